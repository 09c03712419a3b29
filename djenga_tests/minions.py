"""Gru and the moon: the seed's example objects, JSON-serialisable so a real worker gets them."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from kombu.utils.json import register_type


@dataclass
class Moon:
    """The moon. ``shrink`` makes it small enough to grab."""

    size: float = 1.0

    def shrink(self) -> None:
        self.size = 0.001


@dataclass
class Gru:
    """A villain whose every move takes ``pace`` seconds, so the demo's steps are visible."""

    pace: float = 0.0
    has_moon: bool = False
    location: str = "home"

    def _act(self) -> None:
        if self.pace:
            time.sleep(self.pace)

    def fly_to_the_moon(self) -> None:
        self._act()
        self.location = "moon"

    def grab(self, moon: Moon) -> None:
        self._act()
        self.has_moon = True

    def sit_on_the_toilet(self) -> None:
        self._act()
        self.location = "toilet"


register_type(Moon, "djenga_tests.Moon", asdict, lambda data: Moon(**data))
register_type(Gru, "djenga_tests.Gru", asdict, lambda data: Gru(**data))
