"""Scenarios 10, 13, 23, 27 and 29: webhooks, streams, child runs, cancellation, fetch."""

from examples.e2e.basics import add_ten
from wfkit import (
    Response,
    create_hook,
    create_webhook,
    fetch,
    get_run,
    get_writable,
    sleep,
    start,
)


async def write_chunks(stream, chunks: list, pause: float, close: bool) -> int:
    "use step"
    import asyncio

    for chunk in chunks:
        await stream.write(chunk)
        await asyncio.sleep(pause)
    if close:
        await stream.close()
    return len(chunks)


async def streams() -> dict:
    "use workflow"
    default = get_writable()
    named = get_writable("test")
    await write_chunks(default, [b"hello ", b"world\x00"], 0.2, False)
    await sleep(0.5)
    await write_chunks(named, [{"n": 1}, {"n": 2, "nested": [1, 2]}], 0.2, True)
    await write_chunks(default, [{"done": True}], 0.0, True)
    return {"written": 5}


async def respond(request, text: str) -> None:
    "use step"
    await request.respond_with(Response(status=200, body=text))


async def webhooks() -> dict:
    "use workflow"
    plain = create_webhook()
    static = create_webhook(respond_with=Response(402, "Hello from static response!"))
    manual = create_webhook(respond_with="manual")
    first = await plain
    second = await static
    third = await manual
    await respond(third, "Hello from webhook!")
    return {
        name: {"method": r.method, "url": r.url, "body": r.text()}
        for name, r in (("plain", first), ("static", second), ("manual", third))
    }


async def fetch_json(url: str) -> dict:
    "use workflow"
    response = await fetch(url)
    return {"status": response.status, "json": response.json()}


async def spawn_child(value: int) -> str:
    "use step"
    run = await start(add_ten, value)
    return run.run_id


async def await_child(run_id: str) -> int:
    "use step"
    run = get_run(run_id)
    return await run.result(timeout=60)


async def child_run(value: int = 42) -> dict:
    "use workflow"
    child_id = await spawn_child(value)
    result = await await_child(child_id)
    direct = await start(add_ten, value + 1)
    return {"child_id": child_id, "result": result, "direct_child_id": direct.run_id}


async def cancel_me(token: str) -> str:
    "use workflow"
    hook = create_hook(token=token)
    await sleep("1h")
    await hook
    return "not reached"
