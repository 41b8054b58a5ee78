async def broken(:
    "use step"
