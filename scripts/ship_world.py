"""Refresh the toy world shipped inside the package (`make world`): world seed 0 at full size, built afresh.

Run it whenever the world's code or settings change (a test fails while the shipped key and the code's key differ);
`calirl world build --verify` checks a shipped world against a rebuild without replacing it.
"""

import time

from calirl_lite.world import WorldConfig, ship_world

start = time.perf_counter()
folder = ship_world(WorldConfig())
print(f"shipped {folder} ({sum(p.stat().st_size for p in folder.rglob('*') if p.is_file()) / 2**20:.1f} MiB) in {time.perf_counter() - start:.0f} s")
