async def charge(x):
    "use stepp"
    return x
