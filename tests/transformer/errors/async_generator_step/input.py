async def numbers(n):
    "use step"
    for i in range(n):
        yield i
