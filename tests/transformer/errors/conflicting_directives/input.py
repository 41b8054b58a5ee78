async def both(x):
    "use step"
    "use workflow"
    return x
