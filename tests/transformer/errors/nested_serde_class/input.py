from dataclasses import dataclass


class Money:
    def __init__(self, cents):
        self.cents = cents

    def __wfkit_serialize__(self):
        return self.cents

    @classmethod
    def __wfkit_deserialize__(cls, data):
        return cls(data)


def make():
    class Hidden:
        def __wfkit_serialize__(self):
            return {}

        @classmethod
        def __wfkit_deserialize__(cls, data):
            return cls()

    return Hidden


class Ledger:
    class Cents(Money):
        pass


def local_types():
    @dataclass
    class Point:  # a local dataclass is fine: it is simply not registered
        x: int

    return Point(1)
