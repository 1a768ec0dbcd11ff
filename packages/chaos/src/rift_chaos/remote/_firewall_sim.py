"""A tiny iptables model for the fake backend: chains of rules, nothing more.

It understands the subset the partition nemesis uses (``-N -X -F -A -I -D -C -S``,
``-w`` ignored, filter table only) and answers like iptables does: exit 1 with a
message when a chain or rule is missing or a chain already exists. From the rules it
derives which source addresses a node drops, so fake clusters can tell who reaches
whom.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["FirewallSim"]

_BUILTIN = ("INPUT", "FORWARD", "OUTPUT")


class FirewallSim:
    def __init__(self) -> None:
        self.chains: dict[str, list[tuple[str, ...]]] = {name: [] for name in _BUILTIN}

    def apply(self, args: Sequence[str]) -> tuple[int, str, str]:
        """Run one iptables invocation; returns (exit code, stdout, stderr)."""
        tokens = list(args)
        while "-w" in tokens:  # the lock wait and its optional seconds
            i = tokens.index("-w")
            del tokens[i : i + (2 if i + 1 < len(tokens) and tokens[i + 1].isdigit() else 1)]
        if not tokens:
            return 2, "", "iptables: no command specified\n"
        cmd, rest = tokens[0], tokens[1:]
        if cmd == "-S":
            return 0, self._listing(), ""
        if not rest:
            return 2, "", f"iptables: option {cmd!r} requires a chain\n"
        chain, spec = rest[0], tuple(rest[1:])
        if cmd == "-N":
            if chain in self.chains:
                return 1, "", "iptables: Chain already exists.\n"
            self.chains[chain] = []
            return 0, "", ""
        if chain not in self.chains:
            return 1, "", f"iptables: No chain/target/match by that name ({chain}).\n"
        rules = self.chains[chain]
        if cmd == "-X":
            if chain in _BUILTIN or rules or self._referenced(chain):
                return 1, "", "iptables: Directory not empty / chain in use.\n"
            del self.chains[chain]
            return 0, "", ""
        if cmd == "-F":
            rules.clear()
            return 0, "", ""
        if cmd == "-A":
            rules.append(spec)
            return 0, "", ""
        if cmd == "-I":
            if spec and spec[0].isdigit():
                rules.insert(int(spec[0]) - 1, spec[1:])
            else:
                rules.insert(0, spec)
            return 0, "", ""
        if cmd in ("-D", "-C"):
            if spec not in rules:
                return 1, "", "iptables: Bad rule (does a matching rule exist in that chain?).\n"
            if cmd == "-D":
                rules.remove(spec)
            return 0, "", ""
        return 2, "", f"iptables (fake): unsupported command {cmd!r}\n"

    def _referenced(self, chain: str) -> bool:
        return any(_target(rule) == chain for rules in self.chains.values() for rule in rules)

    def _listing(self) -> str:
        lines = [f"-P {name} ACCEPT" for name in _BUILTIN]
        lines += [f"-N {name}" for name in self.chains if name not in _BUILTIN]
        for name, rules in self.chains.items():
            lines += [" ".join(("-A", name, *rule)) for rule in rules]
        return "\n".join(lines) + "\n"

    def dropped_sources(self) -> set[str]:
        """Source addresses whose packets reach INPUT and are dropped."""
        return self._drops("INPUT", depth=0)

    def _drops(self, chain: str, *, depth: int) -> set[str]:
        if depth > 8 or chain not in self.chains:
            return set()
        out: set[str] = set()
        for rule in self.chains[chain]:
            target = _target(rule)
            if target == "DROP" and "-s" in rule:
                out.add(rule[rule.index("-s") + 1].removesuffix("/32"))
            elif target is not None and target in self.chains:
                out |= self._drops(target, depth=depth + 1)
        return out

    @property
    def empty(self) -> bool:
        """No rule and no chain beyond the built-in ones."""
        return set(self.chains) == set(_BUILTIN) and not any(self.chains.values())


def _target(rule: tuple[str, ...]) -> str | None:
    return rule[rule.index("-j") + 1] if "-j" in rule and rule.index("-j") + 1 < len(rule) else None
