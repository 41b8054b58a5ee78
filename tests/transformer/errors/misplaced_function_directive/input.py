async def late(x):
    x = x + 1
    "use step"
    return x
