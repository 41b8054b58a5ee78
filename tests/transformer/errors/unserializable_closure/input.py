async def report(order_id: str) -> str:
    "use workflow"
    import json

    def render(value: dict) -> str:
        return json.dumps(value)

    async def ship() -> str:
        "use step"
        return order_id

    async def publish() -> str:
        "use step"
        label = await ship()
        return render({"id": order_id, "label": label, "json": json.dumps(1)})

    return await publish()
