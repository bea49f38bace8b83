#!/usr/bin/env python3
"""Operation / primitive-floor ratios from the `pairwise` and `room` benches.

Reads target/criterion/**/new/estimates.json (with the sibling
benchmark.json for the group and function names) as written by

    cargo bench --bench pairwise -- --warm-up-time 1 --measurement-time 3
    cargo bench --bench room -- --warm-up-time 1 --measurement-time 3

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

The room bench's results (group sessions, room-key shares, event envelopes,
batch decryption) get a second table with one row per (operation, floor)
pair, its own paired file target/criterion/room_paired.json, a summary of
the 1-vs-2-thread share figures, and the pickle sizes it writes to
target/criterion/room_pickles.json. Each part is printed only when its
results exist.

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


# The room bench: one row per (group, operation, floor). A recipe counts
# primitive benchmarks of the row's group, or of another group when named
# "group/function". "composite" names a benchmark of the same group timed as
# one closure (for the backlog rows it may be the other way of decrypting).
# "paired" is the key in room_paired.json; targets are judged on it.
SHARE_PRIMS = "share_100/"


def share_recipe(n, rotation=False):
    r = {
        SHARE_PRIMS + "ed25519_keygen": 1,
        SHARE_PRIMS + "ed25519_sign_278B": 1,
    }
    if not rotation:
        r.update(
            {
                SHARE_PRIMS + "hmac_pair": n,
                SHARE_PRIMS + "hkdf44_msg": n,
                SHARE_PRIMS + "aes256gcm_seal_463B": n,
            }
        )
    return r


ENC_1K = {"ed25519_sign_1080B": 1, "aes256gcm_seal_1KiB": 1}
DEC_1K = {"ed25519_verify_strict_1080B": 1, "aes256gcm_open_1KiB": 1}
RATCHET_STEP = {"hmac_ratchet": 1, "hkdf44_group": 1}
EVENT = {
    "ed25519_sign_312B": 1,
    "ed25519_verify_strict_312B": 1,
    "aes256gcm_seal_256B": 1,
    "aes256gcm_open_256B": 1,
}


def room_rows():
    rows = [
        ("group_encrypt_1KiB", "op", "sign + AES-GCM", ENC_1K,
         "composite_floor_sign_aes", "group_encrypt_1KiB/op vs sign+aes", 1.1),
        ("group_encrypt_1KiB", "op", "+ ratchet step + HKDF", {**ENC_1K, **RATCHET_STEP},
         "composite_floor", "group_encrypt_1KiB/op vs full", None),
        ("group_decrypt_seq_1KiB", "op", "verify + AES-GCM", DEC_1K,
         "composite_floor_verify_aes", "group_decrypt_seq_1KiB/op vs verify+aes", 1.1),
        ("group_decrypt_seq_1KiB", "op", "+ ratchet step + HKDF", {**DEC_1K, **RATCHET_STEP},
         "composite_floor", "group_decrypt_seq_1KiB/op vs full", None),
        ("group_decrypt_jump_100k", "op", "verify + AES-GCM + 298 HMAC + HKDF",
         {**DEC_1K, "hmac_ratchet": 298, "hkdf44_group": 1},
         "composite_floor", "group_decrypt_jump_100k/op vs floor", None),
    ]
    for n in (100, 1000):
        for fn in ("op_1thread", "op_2threads"):
            rows.append(
                (f"share_{n}", fn, f"{n} x pairwise seal 463B + session creation",
                 share_recipe(n), "composite_floor", f"share_{n}/{fn} vs floor", None)
            )
        if n == 100:
            rows.append(
                ("share_100", "op_rotate", "keygen + sign", share_recipe(n, True),
                 "composite_floor_rotate", "share_100/op_rotate vs floor", None)
            )
    rows += [
        ("event_256B", "op", "sign + verify + 2 AES-GCM", EVENT,
         "composite_floor_sign_verify_aes", "event_256B/op vs sign+verify+aes", None),
        ("event_256B", "op", "+ 2 ratchet steps + 2 HKDF",
         {**EVENT, "group_encrypt_1KiB/hmac_ratchet": 2, "group_encrypt_1KiB/hkdf44_group": 2},
         "composite_floor", "event_256B/op vs full", None),
    ]
    for size in ("256B", "1KiB"):
        g = f"backlog_64x{size}"
        rows += [
            (g, "op_batch", "vs op_sequential", None, "op_sequential",
             f"{g}/op_batch vs op_sequential", 0.6),
            (g, "op_sequential", "64 verify + 64 open", {"verify_strict_x64": 1, "open_all_64": 1},
             "composite_floor_sequential", None, None),
            (g, "op_batch", "verify_batch + 64 open", {"verify_batch_64": 1, "open_all_64": 1},
             "composite_floor_batch", None, None),
            (g, "verify_batch_64", "vs verify_strict_x64", None, "verify_strict_x64",
             f"{g}/verify_batch_64 vs verify_strict_x64", None),
            (g, "composite_floor_batch", "vs composite_floor_sequential", None,
             "composite_floor_sequential",
             f"{g}/composite_floor_batch vs composite_floor_sequential", None),
        ]
    return rows

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


def load_json(criterion_dir, name):
    try:
        with open(os.path.join(criterion_dir, name)) as f:
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
        key = tuple(prim.split("/", 1)) if "/" in prim else (group, prim)
        r = results.get(key)
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


def print_table(header, table):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *table)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for r in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))


def paired_cell(p):
    if not p:
        return "-"
    return f"{p['ratio_median']:.2f}x [{p['ratio_p25']:.2f}-{p['ratio_p75']:.2f}]"


def verdict(target, judged):
    if target is None or judged is None:
        return "-"
    return f"{target:g}x {'ok' if judged <= target else 'MISSED'}"


def pairwise_report(results, paired):
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
        p = paired.get(row["op"])
        judged = p["ratio_median"] if p else ratio
        table.append(
            [
                row["op"],
                fmt_ns(row["mean"]),
                fmt_ns(row["floor"]),
                f"{ratio:.2f}x" if ratio else "-",
                f"{row['ratio_median']:.2f}x" if row["ratio_median"] else "-",
                fmt_ns(row["composite"]),
                f"{row['ratio_composite']:.2f}x" if row["ratio_composite"] else "-",
                paired_cell(p),
                verdict(row["target"], judged),
            ]
        )
        if row["missing"]:
            notes.append(f"{row['op']}: no estimate for {', '.join(row['missing'])}")
    if not table:
        return
    print_table(header, table)
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


def room_report(results, paired, pickles):
    header = [
        "operation",
        "mean",
        "floor",
        "floor (sum)",
        "ratio",
        "composite",
        "ratio vs composite",
        "paired ratio [IQR]",
        "target",
    ]
    table = []
    notes = []
    for group, fn, label, recipe, composite, paired_key, target in room_rows():
        r = results.get((group, fn))
        if r is None:
            continue
        floor = None
        if recipe:
            floor, missing = floor_of(results, group, recipe, "mean")
            if missing:
                notes.append(f"{group}/{fn}: no estimate for {', '.join(missing)}")
        comp = results.get((group, composite)) if composite else None
        p = paired.get(paired_key) if paired_key else None
        ratio = r["mean"] / floor if floor else None
        ratio_comp = r["mean"] / comp["mean"] if comp else None
        judged = p["ratio_median"] if p else (ratio if recipe else ratio_comp)
        table.append(
            [
                f"{group}/{fn}",
                fmt_ns(r["mean"]),
                label,
                fmt_ns(floor),
                f"{ratio:.2f}x" if ratio else "-",
                f"{fmt_ns(comp['mean'])}" if comp else "-",
                f"{ratio_comp:.2f}x" if ratio_comp else "-",
                paired_cell(p),
                verdict(target, judged),
            ]
        )
    if not table:
        return
    print_table(header, table)

    print()
    print("room-key share, 1 vs 2 threads (set_share_threads):")
    for n in (100, 1000):
        one = results.get((f"share_{n}", "op_1thread"))
        two = results.get((f"share_{n}", "op_2threads"))
        if not (one and two):
            continue
        line = (
            f"  {n} devices: 1 thread {fmt_ns(one['mean'])}, 2 threads {fmt_ns(two['mean'])}, "
            f"speed-up {one['mean'] / two['mean']:.2f}x"
        )
        p1 = paired.get(f"share_{n}/op_1thread vs floor")
        p2 = paired.get(f"share_{n}/op_2threads vs floor")
        if p1 and p2:
            line += (
                f" (paired: {p1['op_ns'] / 1e3:.0f} vs {p2['op_ns'] / 1e3:.0f} µs, "
                f"speed-up {p1['ratio_median'] / p2['ratio_median']:.2f}x against the same floor)"
            )
        print(line)
    rot = results.get(("share_100", "op_rotate"))
    one = results.get(("share_100", "op_1thread"))
    if rot and one:
        print(
            f"  rotation alone (share_100/op_rotate): {fmt_ns(rot['mean'])}, "
            f"{100 * rot['mean'] / one['mean']:.0f}% of the 100-device share"
        )

    print()
    print("primitives (mean, per group):")
    for group in dict.fromkeys(g for g, *_ in room_rows()):
        prims = sorted(
            (fn, r["mean"])
            for (g, fn), r in results.items()
            if g == group and fn != "op" and not fn.startswith(("op_", "composite"))
        )
        if prims:
            print(f"  {group}: " + ", ".join(f"{fn} {fmt_ns(ns)}" for fn, ns in prims))
    if pickles:
        print()
        print("pickle sizes (binary / base64 text):")
        for name, size in pickles.items():
            extra = ""
            if name == "inbound group session":
                extra = f"  (target under 300: {'ok' if size['text'] < 300 else 'MISSED'})"
            print(f"  {name}: {size['binary']} B / {size['text']} B{extra}")
    for n in notes:
        print("note:", n)


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
    if not results:
        sys.exit(f"no criterion estimates under {args.criterion_dir}; run the benches first")
    pairwise_report(results, load_json(args.criterion_dir, "pairwise_paired.json"))
    if any(g in {row[0] for row in room_rows()} for g, _ in results):
        print()
        print("room layer:")
        room_report(
            results,
            load_json(args.criterion_dir, "room_paired.json"),
            load_json(args.criterion_dir, "room_pickles.json"),
        )

if __name__ == "__main__":
    main()
