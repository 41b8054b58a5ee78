async def factory():
    class Local:
        @staticmethod
        async def work():
            "use step"
            return 1

    return Local
