def add(a, b):
    "use step"
    return a + b


def flow():
    "use workflow"
    return add(1, 2)
