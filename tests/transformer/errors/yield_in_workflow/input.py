async def stream(n):
    "use workflow"
    for i in range(n):
        yield i
