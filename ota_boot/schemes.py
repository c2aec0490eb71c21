"""Boot schemes: how slot choice, trial and attempts are spelled in bootloader variables.

A scheme is pure: it turns one variable mapping into the next. The same scheme drives the
application side (activate, confirm, revert, state) and the model of the bootloader script
(``select``), so tests can play the bootloader's part at every restart.

``CountingScheme`` follows U-Boot's own boot counter: ``upgrade_available=1`` marks a trial, only
then does the bootloader increment ``bootcount``, and once ``bootcount`` exceeds ``bootlimit`` it
boots the other slot (``altbootcmd``). Restarts outside a trial consume nothing.

``OrderScheme`` follows RAUC's U-Boot/GRUB integration: ``BOOT_ORDER="A B"`` and ``BOOT_x_LEFT``;
the bootloader boots the first slot with attempts left and decrements them at every start; marking
a slot good restores its attempts. Every start counts, so the application must confirm at each start.
"""

from __future__ import annotations

import attrs

from ota_boot.errors import BootConfigurationError, EnvironmentCorruptedError

__all__ = ["BootScheme", "CountingScheme", "OrderScheme", "SchemeState"]


@attrs.frozen
class SchemeState:
    """What the variables say: the slot to boot, whether it is on trial, attempts left."""

    slot: str
    in_trial: bool
    attempts_left: int | None


def _int(variables: dict[str, str], name: str, default: int) -> int:
    text = variables.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text, 0)
    except ValueError as error:
        raise EnvironmentCorruptedError(f"variable {name}={text!r} is not a number", details={name: text}) from error


@attrs.frozen
class CountingScheme:
    """U-Boot ``bootcount`` semantics; the variable names are configuration."""

    slots: tuple[str, str] = ("A", "B")
    slot_var: str = "boot_slot"
    trial_var: str = "upgrade_available"
    count_var: str = "bootcount"
    limit_var: str = "bootlimit"

    def other(self, slot: str) -> str:
        """The slot that is not ``slot``."""
        if slot not in self.slots:
            raise BootConfigurationError(f"unknown slot {slot!r}; slots are {self.slots}")
        return self.slots[1] if slot == self.slots[0] else self.slots[0]

    def initial(self, slot: str) -> dict[str, str]:
        """Variables of a factory device running ``slot``, confirmed."""
        self.other(slot)
        return {self.slot_var: slot, self.trial_var: "0", self.count_var: "0", self.limit_var: "3"}

    def state(self, variables: dict[str, str]) -> SchemeState:
        """Decode the variables."""
        slot = variables.get(self.slot_var, self.slots[0])
        self.other(slot)
        trial = variables.get(self.trial_var, "0") == "1"
        left = _int(variables, self.limit_var, 3) - _int(variables, self.count_var, 0) if trial else None
        return SchemeState(slot, trial, left)

    def activate(self, variables: dict[str, str], target: str, *, attempts: int, permanent: bool) -> dict[str, str]:
        """Boot ``target`` next: on trial with ``attempts`` starts, or permanently."""
        self.other(target)
        out = dict(variables)
        out[self.slot_var] = target
        out[self.trial_var] = "0" if permanent else "1"
        out[self.count_var] = "0"
        out[self.limit_var] = str(attempts)
        return out

    def confirm(self, variables: dict[str, str]) -> dict[str, str]:
        """End the trial: the running slot stays."""
        out = dict(variables)
        out[self.trial_var] = "0"
        out[self.count_var] = "0"
        return out

    def revert(self, variables: dict[str, str]) -> dict[str, str]:
        """End the trial by going back to the other slot."""
        current = self.state(variables).slot
        out = self.confirm(variables)
        out[self.slot_var] = self.other(current)
        return out

    def select(self, variables: dict[str, str]) -> tuple[str, dict[str, str]]:
        """The bootloader's part at one start: the slot it boots and the variables it saves."""
        state = self.state(variables)
        if not state.in_trial:
            return state.slot, dict(variables)
        out = dict(variables)
        count = _int(variables, self.count_var, 0) + 1
        out[self.count_var] = str(count)
        if count > _int(variables, self.limit_var, 3):
            out = self.revert(out)
        return out[self.slot_var], out


@attrs.frozen
class OrderScheme:
    """RAUC-style ``BOOT_ORDER`` and ``BOOT_<slot>_LEFT``; the names are configuration."""

    slots: tuple[str, str] = ("A", "B")
    order_var: str = "BOOT_ORDER"
    left_template: str = "BOOT_{slot}_LEFT"
    attempts: int = 3

    def other(self, slot: str) -> str:
        """The slot that is not ``slot``."""
        if slot not in self.slots:
            raise BootConfigurationError(f"unknown slot {slot!r}; slots are {self.slots}")
        return self.slots[1] if slot == self.slots[0] else self.slots[0]

    def _left(self, slot: str) -> str:
        return self.left_template.format(slot=slot)

    def _order(self, variables: dict[str, str]) -> list[str]:
        order = [slot for slot in variables.get(self.order_var, " ".join(self.slots)).split() if slot in self.slots]
        return order or list(self.slots)

    def initial(self, slot: str) -> dict[str, str]:
        """Variables of a factory device running ``slot``."""
        return {
            self.order_var: f"{slot} {self.other(slot)}",
            self._left(slot): str(self.attempts),
            self._left(self.other(slot)): str(self.attempts),
        }

    def state(self, variables: dict[str, str]) -> SchemeState:
        """The first slot with attempts left; on trial while its attempts are below the full count."""
        for slot in self._order(variables):
            left = _int(variables, self._left(slot), 0)
            if left > 0:
                return SchemeState(slot, left < self.attempts, left)
        first = self._order(variables)[0]
        return SchemeState(first, True, 0)

    def activate(self, variables: dict[str, str], target: str, *, attempts: int, permanent: bool) -> dict[str, str]:
        """Put ``target`` first with fresh attempts (``permanent`` is the same: RAUC has no one-shot)."""
        out = dict(variables)
        out[self.order_var] = f"{target} {self.other(target)}"
        out[self._left(target)] = str(attempts)
        return out

    def confirm(self, variables: dict[str, str]) -> dict[str, str]:
        """Mark the running slot good: full attempts again."""
        out = dict(variables)
        out[self._left(self.state(variables).slot)] = str(self.attempts)
        return out

    def revert(self, variables: dict[str, str]) -> dict[str, str]:
        """Mark the running slot bad: the other one goes first."""
        current = self.state(variables).slot
        out = dict(variables)
        out[self.order_var] = f"{self.other(current)} {current}"
        out[self._left(current)] = "0"
        if _int(out, self._left(self.other(current)), 0) <= 0:
            out[self._left(self.other(current))] = str(self.attempts)
        return out

    def select(self, variables: dict[str, str]) -> tuple[str, dict[str, str]]:
        """The bootloader script: first slot with attempts left, decremented; none left: reset all."""
        out = dict(variables)
        for slot in self._order(variables):
            left = _int(variables, self._left(slot), 0)
            if left > 0:
                out[self._left(slot)] = str(left - 1)
                return slot, out
        for slot in self.slots:
            out[self._left(slot)] = str(self.attempts)
        first = self._order(variables)[0]
        out[self._left(first)] = str(self.attempts - 1)
        return first, out


BootScheme = CountingScheme | OrderScheme
