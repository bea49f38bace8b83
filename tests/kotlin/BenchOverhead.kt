// The cost of the bindings from Kotlin on the JVM (JNA): an event encrypted
// by one endpoint and decrypted by another, against the same operation run
// natively in Rust in the same process (nativeEventRoundTripNs), and a
// trivial call (Endpoint.deviceId), whose native cost benches/ffi_calls.rs
// measures. The Kotlin twin of tests/python/bench_overhead.py.
//
//     PROFILE=release scripts/bindings.sh
//     PROFILE=release scripts/kotlin.sh tests/kotlin/BenchOverhead.kt
//
// scripts/bench-bindings.sh runs it and reads its `RESULT kotlin <what> <ns>`
// lines. Not part of the tests: it times things.

import java.util.Locale
import uniffi.roomseal.*

const val BENCH_ROOM = "!bench:x"
const val EVENTS = 5000
const val TRIVIAL_CALLS = 100_000

fun connect(alice: Endpoint, bob: Endpoint) {
    val upload = bob.keysToPublish(1u)
    bob.markKeysAsPublished(upload)
    alice.establishSession(upload.deviceKeysJson, upload.oneTimeKeysJson[0]).use { device ->
        alice.setRotationPolicy(UInt.MAX_VALUE, 1_000_000_000uL)
        alice.shareRoomKey(BENCH_ROOM, listOf(device)).use { share ->
            for (m in share.messages) bob.receiveDeviceMessage(alice.userId(), m.senderKey, m.message)
            alice.markRoomKeySent(share)
        }
    }
}

var nextEvent = 0

fun fmt(pattern: String, vararg args: Any): String = String.format(Locale.ROOT, pattern, *args)

fun roundTripNs(alice: Endpoint, bob: Endpoint, n: Int): Double {
    val content = """{"body":"hello from the benchmark"}"""
    val start = System.nanoTime()
    repeat(n) {
        val envelope = alice.encryptEvent(BENCH_ROOM, "m.room.message", content)
        bob.decryptEvent(BENCH_ROOM, "\$e${nextEvent++}", envelope)
    }
    return (System.nanoTime() - start).toDouble() / n
}

fun trivialCallNs(endpoint: Endpoint, n: Int): Double {
    var length = 0
    val start = System.nanoTime()
    repeat(n) { length += endpoint.deviceId().length }
    val elapsed = System.nanoTime() - start
    check(length == n) { "deviceId() returned an unexpected id" }
    return elapsed.toDouble() / n
}

fun main() {
    Endpoint("@alice:bench", "A").use { alice ->
        Endpoint("@bob:bench", "B").use { bob ->
            connect(alice, bob)
            // Warm up the JIT and both sides.
            roundTripNs(alice, bob, 500)
            trivialCallNs(alice, 20_000)
            nativeEventRoundTripNs(200u)
            val rows = (1..3).map { nativeEventRoundTripNs(EVENTS.toUInt()) to roundTripNs(alice, bob, EVENTS) }
            for ((native, binding) in rows) {
                val overhead = (binding - native) / 1000
                println(fmt("native %8.2f us   via Kotlin %8.2f us   overhead %6.2f us (%.2fx)",
                    native / 1000, binding / 1000, overhead, binding / native))
            }
            val native = rows.minOf { it.first }
            val binding = rows.minOf { it.second }
            val trivial = (1..3).minOf { trivialCallNs(alice, TRIVIAL_CALLS) }
            println(fmt("best of 3: Endpoint.deviceId() from Kotlin %.0f ns per call", trivial))
            println(fmt("RESULT kotlin trivial_call %.1f", trivial))
            println(fmt("RESULT kotlin event_round_trip %.1f", binding))
            println(fmt("RESULT kotlin native_event_round_trip %.1f", native))
        }
    }
}
