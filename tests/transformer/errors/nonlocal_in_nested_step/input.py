async def counter() -> int:
    "use workflow"
    count = 0

    async def bump() -> None:
        "use step"
        nonlocal count
        count += 1

    await bump()
    return count
