class Steps:
    "use step"

    async def run(self):
        return 1
