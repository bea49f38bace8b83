"""Prints the ratios of `cargo bench --bench olm`: roomseal over vodozemac
per operation, and each operation over the primitive floor, from
criterion's medians in target/criterion/."""

import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"


def median(group, name):
    path = ROOT / group / name / "new" / "estimates.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["median"]["point_estimate"]


def fmt(ns):
    return f"{ns / 1000:9.2f} us" if ns >= 1000 else f"{ns:9.1f} ns"


floor = {n: median("floor", n) for n in
         ["x25519_dh", "x25519_keygen", "ed25519_sign", "ed25519_verify_strict",
          "aes256cbc_1k", "hmac_sha256_32"]}
print("floor:")
for name, value in floor.items():
    if value:
        print(f"  {name:28} {fmt(value)}")
print("\noperation                      roomseal      vodozemac   ratio")
for group in ["olm", "megolm"]:
    base = ROOT / group
    if not base.exists():
        continue
    # Criterion stores "op/roomseal" as the directory "op_roomseal".
    ops = sorted({p.name.rsplit("_", 1)[0] for p in base.iterdir()
                  if p.is_dir() and p.name.endswith(("_roomseal", "_vodozemac"))})
    for op in ops:
        ours, theirs = median(group, f"{op}_roomseal"), median(group, f"{op}_vodozemac")
        if ours and theirs:
            print(f"  {group}/{op:24} {fmt(ours)} {fmt(theirs)}  {ours / theirs:5.2f}x")
        elif ours:
            print(f"  {group}/{op:24} {fmt(ours)}")
