async def flow(x):
    "use workflows"
    return x
