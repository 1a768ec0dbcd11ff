"""The leader's view of one follower's log (etcd/raft's ``Progress``).

``match_index``: the highest index known to be replicated on the follower (only
grows). ``next_index``: the next entry to send. A follower is in one of two modes:

=========  ==========================================  ===========================
mode       sending                                     leaves on
=========  ==========================================  ===========================
probing    one AppendEntries per heartbeat/response,   a success (-> replicating)
           from ``next_index``, never advancing it
replicate  new entries at once, the next batch on      a rejection (-> probing,
           every success; ``next_index`` advances      ``next_index`` = the hint)
           optimistically as they are sent
=========  ==========================================  ===========================

A rejection's hint is a next index the follower suggests; ``next_index`` never
drops to ``match_index`` or below, so duplicated or reordered rejections only
cost a retransmission. ``active`` records that the follower answered during the
current check-quorum period.
"""

from __future__ import annotations

__all__ = ["Progress", "quorum_index"]


class Progress:
    __slots__ = ("active", "match_index", "next_index", "probing")

    def __init__(self, next_index: int) -> None:
        self.next_index = next_index
        self.match_index = 0
        self.probing = True
        self.active = False

    def sent(self, last_index: int) -> None:
        """Entries up to ``last_index`` left in an AppendEntries."""
        if not self.probing:
            self.next_index = last_index + 1

    def acknowledged(self, match_index: int) -> None:
        """A success up to ``match_index``: the follower is replicating."""
        self.active = True
        self.match_index = max(self.match_index, match_index)
        self.next_index = max(self.next_index, self.match_index + 1)
        self.probing = False

    def rejected(self, hint: int) -> bool:
        """A rejection; True if a new probe should be sent now."""
        self.active = True
        moved = max(self.match_index + 1, min(self.next_index, hint))
        if moved == self.next_index and self.probing:
            return False  # a stale duplicate of a rejection already acted on
        self.next_index, self.probing = moved, True
        return True


def quorum_index(matches: list[int], quorum: int) -> int:
    """The highest index that at least ``quorum`` of ``matches`` have reached."""
    return sorted(matches, reverse=True)[quorum - 1]
