#!/usr/bin/env python3
"""Cut a connected excerpt out of SNAP's as-caida20071105.txt.

Usage: make_snap_excerpt.py SOURCE ROOT_ASN COUNT > snap-excerpt.txt

Takes the first COUNT ASes in breadth-first order from ROOT_ASN (neighbours in ascending
ASN order) and keeps every line of SOURCE whose two ASes are both taken, in SOURCE's order,
so both directions of each link among them stay. Comment lines are replaced by our own.
"""
import sys
from collections import deque

source, root, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
lines = []
adj = {}
with open(source) as f:
    for line in f:
        if line.startswith("#"):
            continue
        a, b, rel = line.split()
        a, b = int(a), int(b)
        lines.append((a, b, rel))
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)

taken, queue = {root}, deque([root])
order = []
while queue and len(order) < count:
    u = queue.popleft()
    order.append(u)
    for v in sorted(adj.get(u, ())):
        if v not in taken:
            taken.add(v)
            queue.append(v)
keep = set(order)

print(f"# Excerpt of SNAP as-caida20071105.txt: the first {len(keep)} ASes in breadth-first")
print(f"# order from AS{root}, every line among them. Made by make_snap_excerpt.py.")
print("# Relationships: -1 From is a customer of To, 1 From is a provider of To, 0 peers, 2 siblings")
print("# FromNodeId\tToNodeId\tRelationship")
for a, b, rel in lines:
    if a in keep and b in keep:
        print(f"{a}\t{b}\t{rel}")
