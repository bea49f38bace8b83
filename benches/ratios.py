#!/usr/bin/env python3
"""Operation / primitive-floor ratios from the `pairwise` criterion benches.

Reads target/criterion/**/new/estimates.json (with the sibling
benchmark.json for the group and function names) as written by

    cargo bench --bench pairwise -- --warm-up-time 1 --measurement-time 3

and prints, per operation: its mean time, the floor (the sum of the
primitive benchmarks measured in the same group, weighted by how many times
the operation performs each), the ratio, the group's composite floor (one
closure doing exactly those primitive calls) and the ratio to it. The median
ratio is printed too, as a check against scheduler noise.

The bench binary also times each operation and its composite floor in
alternating short batches after the criterion groups and writes
target/criterion/pairwise_paired.json; when present, its median ratio (with
interquartile range) is printed as the "paired" column. On a shared machine
criterion's separate estimates drift with the load between benchmarks while
the paired ratio does not, so targets are judged on the paired ratio when it
exists and on the summed floor otherwise.

Standard library only. Usage: python3 benches/ratios.py [--criterion-dir DIR]
"""

import argparse
import json
import os
import sys

# group -> (floor recipe {primitive benchmark: count}, target ratio or None).
SYMMETRIC_PAIR = {
    "hmac_pair": 2,
    "hkdf44_msg": 2,
    "aes256gcm_seal_256B": 1,
    "aes256gcm_open_256B": 1,
}
FLOORS = {
    "account_new": ({"ed25519_keygen": 1, "x25519_keygen": 1}, None),
    "otk_generate_50": ({"x25519_keygen": 50}, None),
    "otk_sign_50": ({"ed25519_sign_64B": 50}, None),
    "outbound_session": (
        {
            "ed25519_verify_strict_64B": 1,
            "x25519_keygen": 2,
            "x25519_dh": 3,
            "hkdf64_3dh": 1,
            "ed25519_sign_91B": 1,
        },
        None,
    ),
    "inbound_session": (
        {
            "ed25519_verify_strict_91B": 1,
            "x25519_dh": 4,
            "hkdf64_3dh": 1,
            "x25519_keygen": 1,
            "hkdf64_root": 1,
            "hmac_pair": 1,
            "hkdf44_msg": 1,
            "aes256gcm_open_256B": 1,
        },
        None,
    ),
    "encrypt_decrypt_256": (SYMMETRIC_PAIR, 1.5),
    "ping_pong_256": (
        {
            # Two direction changes per round trip; each costs the receiver
            # DH + HKDF (receiving chain) and keygen + DH + HKDF (sending).
            "x25519_dh": 4,
            "x25519_keygen": 2,
            "hkdf64_root": 4,
            # Two messages, each sealed once and opened once.
            "hmac_pair": 4,
            "hkdf44_msg": 4,
            "aes256gcm_seal_256B": 2,
            "aes256gcm_open_256B": 2,
        },
        1.1,
    ),
    "fanout_200x100": (
        {"hmac_pair": 100, "hkdf44_msg": 100, "aes256gcm_seal_200B": 100},
        None,
    ),
}

# Groups holding several operations, each with its own floor recipe.
MULTI_OP_FLOORS = {
    "pickle": {
        "account_pickle": {"aes256gcm_seal_account": 1},
        # The pickle stores private keys only, so a restore recomputes 51
        # X25519 and one Ed25519 public key on top of the AEAD.
        "account_unpickle": {
            "aes256gcm_open_account": 1,
            "x25519_public_from_secret": 51,
            "ed25519_signing_key_from_bytes": 1,
        },
        "session_pickle": {"aes256gcm_seal_session": 1},
        # The ratchet public key is recomputed and the peer's Ed25519 key is
        # decompressed and validated.
        "session_unpickle": {
            "aes256gcm_open_session": 1,
            "x25519_public_from_secret": 1,
            "ed25519_public_validate": 1,
        },
    }
}


def load(criterion_dir):
    """{(group, function): {"mean": ns, "median": ns, "mean_ci": (lo, hi)}}"""
    results = {}
    for root, _dirs, files in os.walk(criterion_dir):
        if os.path.basename(root) != "new" or "estimates.json" not in files:
            continue
        try:
            with open(os.path.join(root, "benchmark.json")) as f:
                bench = json.load(f)
            with open(os.path.join(root, "estimates.json")) as f:
                est = json.load(f)
        except (OSError, ValueError):
            continue
        key = (bench.get("group_id"), bench.get("function_id"))
        mean = est["mean"]
        results[key] = {
            "mean": mean["point_estimate"],
            "median": est["median"]["point_estimate"],
            "mean_ci": (
                mean["confidence_interval"]["lower_bound"],
                mean["confidence_interval"]["upper_bound"],
            ),
        }
    return results


def load_paired(criterion_dir):
    try:
        with open(os.path.join(criterion_dir, "pairwise_paired.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def fmt_ns(ns):
    if ns is None:
        return "-"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}" if ns / scale < 100 else f"{ns / scale:.0f} {unit}"
    return f"{ns:.0f} ns"


def floor_of(results, group, recipe, stat):
    total = 0.0
    missing = []
    for prim, count in recipe.items():
        r = results.get((group, prim))
        if r is None:
            missing.append(prim)
        else:
            total += count * r[stat]
    return (None if missing else total), missing


def rows(results):
    ops = []
    for group, (recipe, target) in FLOORS.items():
        for (g, fn) in sorted(results):
            if g == group and fn.startswith("op"):
                ops.append((group, fn, recipe, target))
    for group, per_op in MULTI_OP_FLOORS.items():
        for fn, recipe in per_op.items():
            if (group, fn) in results:
                ops.append((group, fn, recipe, None))
    for group, fn, recipe, target in ops:
        r = results[(group, fn)]
        floor, missing = floor_of(results, group, recipe, "mean")
        floor_med, _ = floor_of(results, group, recipe, "median")
        comp = results.get((group, "composite_floor"))
        yield {
            "op": f"{group}/{fn}",
            "mean": r["mean"],
            "ci": r["mean_ci"],
            "floor": floor,
            "ratio": r["mean"] / floor if floor else None,
            "ratio_median": r["median"] / floor_med if floor_med else None,
            "composite": comp["mean"] if comp else None,
            "ratio_composite": r["mean"] / comp["mean"] if comp else None,
            "target": target,
            "missing": missing,
        }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--criterion-dir",
        default=os.path.join(here, "..", "target", "criterion"),
        help="criterion output directory (default: target/criterion)",
    )
    args = parser.parse_args()
    results = load(args.criterion_dir)
    paired = load_paired(args.criterion_dir)
    if not results:
        sys.exit(f"no criterion estimates under {args.criterion_dir}; run the benches first")

    header = [
        "operation",
        "mean",
        "floor (sum)",
        "ratio",
        "ratio (median)",
        "composite floor",
        "ratio vs composite",
        "paired ratio [IQR]",
        "target",
    ]
    table = []
    notes = []
    for row in rows(results):
        ratio = row["ratio"]
        target = row["target"]
        p = paired.get(row["op"])
        paired_text = "-"
        judged = ratio
        if p:
            paired_text = f"{p['ratio_median']:.2f}x [{p['ratio_p25']:.2f}-{p['ratio_p75']:.2f}]"
            judged = p["ratio_median"]
        verdict = "-"
        if target is not None and judged is not None:
            verdict = f"{target:g}x {'ok' if judged <= target else 'MISSED'}"
        table.append(
            [
                row["op"],
                fmt_ns(row["mean"]),
                fmt_ns(row["floor"]),
                f"{ratio:.2f}x" if ratio else "-",
                f"{row['ratio_median']:.2f}x" if row["ratio_median"] else "-",
                fmt_ns(row["composite"]),
                f"{row['ratio_composite']:.2f}x" if row["ratio_composite"] else "-",
                paired_text,
                verdict,
            ]
        )
        if row["missing"]:
            notes.append(f"{row['op']}: no estimate for {', '.join(row['missing'])}")

    widths = [max(len(str(c)) for c in col) for col in zip(header, *table)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    print(line)
    print("  ".join("-" * w for w in widths))
    for r in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))

    print()
    print("primitives (mean, per group):")
    for group in list(FLOORS) + list(MULTI_OP_FLOORS):
        prims = sorted(
            (fn, r["mean"])
            for (g, fn), r in results.items()
            if g == group and not fn.startswith("op") and fn not in MULTI_OP_FLOORS.get(group, {})
        )
        if prims:
            print(f"  {group}: " + ", ".join(f"{fn} {fmt_ns(ns)}" for fn, ns in prims))
    for n in notes:
        print("note:", n)


if __name__ == "__main__":
    main()
