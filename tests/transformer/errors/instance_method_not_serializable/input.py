class Client:
    def __init__(self, url):
        self.url = url

    async def get(self, path):
        "use step"
        return self.url + path
