async def outer():
    async def inner():
        "use workflow"
        return 1

    return await inner()
