// The roomseal bindings, driven from Kotlin on the JVM: three devices, a
// relay that only moves bytes, a room key shared and rotated, events both
// ways, pickles, typed exceptions and one object called from many threads.
//
// Run by scripts/kotlin.sh (which compiles it together with the generated
// bindings/mobile/uniffi/roomseal/roomseal.kt). Every check throws on
// failure; main prints the failure and exits with status 1.

import com.sun.jna.Native
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.CyclicBarrier
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import kotlin.system.exitProcess
import uniffi.roomseal.*

const val ROOM = "!room:example.org"
const val THREAD_ROOM = "!threads:example.org"

class CheckFailed(message: String) : Exception(message)

object Checks {
    var passed = 0
        private set

    fun that(condition: Boolean, what: String) {
        if (!condition) throw CheckFailed(what)
        passed++
    }

    fun <T> equal(actual: T, expected: T, what: String) =
        that(actual == expected, "$what: expected <$expected>, got <$actual>")

    /** Runs [call] and checks it throws exactly an [E] (a RoomsealException subclass). */
    inline fun <reified E : RoomsealException> throws(what: String, call: () -> Unit): E {
        val thrown = try {
            call()
            null
        } catch (e: RoomsealException) {
            e
        }
        that(thrown is E, "$what: expected ${E::class.simpleName}, got ${thrown?.javaClass?.simpleName ?: "no exception"}")
        that(!thrown?.message.isNullOrEmpty(), "$what: the exception has a message")
        return thrown as E
    }
}

/** A stand-in server: published keys and pending device messages, by identity key. */
class Relay : AutoCloseable {
    private val bundles = HashMap<String, String>()
    private val oneTimeKeys = HashMap<String, ArrayDeque<String>>()
    private val inbox = HashMap<String, MutableList<Pair<String, String>>>()
    private val owned = ArrayList<Disposable>()

    /** Keeps [device] until the relay closes. */
    fun own(device: Device): Device = device.also { owned.add(it) }

    fun publish(endpoint: Endpoint): Device {
        val upload = endpoint.keysToPublish(5u)
        Checks.equal(upload.oneTimeKeysJson.size, 5, "one-time keys to publish")
        val key = endpoint.identity().curve25519
        bundles[key] = upload.deviceKeysJson
        oneTimeKeys.getOrPut(key) { ArrayDeque() }.addAll(upload.oneTimeKeysJson)
        endpoint.markKeysAsPublished()
        return own(Device.fromJson(upload.deviceKeysJson))
    }

    fun bundle(device: Device): String = bundles.getValue(device.identity().curve25519)

    /** The device's bundle and one of its one-time keys, as a server hands them out. */
    fun claim(device: Device): Pair<String, String> {
        val key = device.identity().curve25519
        return bundles.getValue(key) to oneTimeKeys.getValue(key).removeFirst()
    }

    fun send(sender: Endpoint, share: ShareResult) {
        val from = sender.identity().curve25519
        for (m in share.messages) inbox.getOrPut(m.recipientKey) { ArrayList() }.add(from to m.message)
    }

    fun deliver(endpoint: Endpoint): List<ReceivedKey> =
        (inbox.remove(endpoint.identity().curve25519) ?: emptyList())
            .map { (from, message) -> endpoint.receiveDeviceMessage(from, message) }

    override fun close() {
        owned.forEach { it.destroy() }
        owned.clear()
    }
}

/**
 * Shares [sender]'s key of [room] with [devices], establishing sessions from
 * claimed keys when some are missing; returns (rotated, session id, number
 * of messages sent).
 */
fun share(relay: Relay, sender: Endpoint, room: String, devices: List<Device>): Triple<Boolean, String, Int> {
    var result = sender.shareRoomKey(room, devices)
    var sent = 0
    var rotated = result.rotated
    if (result.missingSessions.isNotEmpty()) {
        result.use { first ->
            // Devices with a session already got their message; send those.
            relay.send(sender, first)
            sent = first.messages.size
            for (device in first.missingSessions) {
                val (bundle, oneTimeKey) = relay.claim(device)
                relay.own(sender.establishSession(bundle, oneTimeKey))
                Checks.that(sender.hasSession(device), "session established with ${device.deviceId()}")
            }
        }
        result = sender.shareRoomKey(room, devices)
    }
    return result.use {
        Checks.that(it.missingSessions.isEmpty(), "every device has a session")
        relay.send(sender, it)
        Triple(rotated || it.rotated, it.sessionId, sent + it.messages.size)
    }
}

fun readBody(reader: Endpoint, room: String, eventId: String, envelope: String): String =
    reader.decryptEvent(room, eventId, envelope).contentJson

fun conversation(relay: Relay, alice: Endpoint, bob: Endpoint, carol: Endpoint) {
    val aliceDev = relay.publish(alice)
    val bobDev = relay.publish(bob)
    val carolDev = relay.publish(carol)
    Checks.equal(bobDev.userId(), "@bob:example.org", "device user id")
    Checks.equal(carolDev.identity(), carol.identity(), "published identity")

    // Alice shares her room key with Bob and Carol (sessions from claimed keys).
    val (rotated, sessionId, sent) = share(relay, alice, ROOM, listOf(bobDev, carolDev))
    Checks.that(!rotated, "the first share does not rotate")
    Checks.equal(sent, 2, "messages for two devices")
    for (reader in listOf(bob, carol)) {
        val received = relay.deliver(reader).single()
        Checks.equal(received.roomId, ROOM, "received room")
        Checks.equal(received.sessionId, sessionId, "received session")
        Checks.equal(received.sender, alice.identity(), "received sender")
        Checks.equal(received.firstIndex, 0u, "received first index")
    }

    val hello = alice.encryptEvent(ROOM, "m.room.message", """{"body":"hello both"}""")
    Checks.that("hello both" !in hello, "the envelope hides the plaintext")
    for (reader in listOf(bob, carol)) {
        val event = reader.decryptEvent(ROOM, "\$1", hello)
        Checks.equal(event.eventType, "m.room.message", "event type")
        Checks.equal(event.contentJson, """{"body":"hello both"}""", "event content")
        Checks.equal(event.sender, alice.identity(), "event sender")
        Checks.equal(event.messageIndex, 0u, "event index")
        Checks.that(event.authenticated, "event authenticated")
    }

    // The other way: Bob and Carol share their own keys and write back.
    share(relay, bob, ROOM, listOf(aliceDev, carolDev))
    share(relay, carol, ROOM, listOf(aliceDev, bobDev))
    Checks.equal(relay.deliver(alice).size, 2, "Alice receives two keys")
    Checks.equal(relay.deliver(bob).size, 1, "Bob receives Carol's key")
    Checks.equal(relay.deliver(carol).size, 1, "Carol receives Bob's key")
    val fromBob = bob.encryptEvent(ROOM, "m.room.message", """{"body":"from bob"}""")
    val fromCarol = carol.encryptEvent(ROOM, "m.room.message", """{"body":"from carol"}""")
    Checks.equal(readBody(alice, ROOM, "\$2", fromBob), """{"body":"from bob"}""", "Alice reads Bob")
    Checks.equal(readBody(carol, ROOM, "\$2", fromBob), """{"body":"from bob"}""", "Carol reads Bob")
    Checks.equal(readBody(alice, ROOM, "\$3", fromCarol), """{"body":"from carol"}""", "Alice reads Carol")
    Checks.equal(readBody(bob, ROOM, "\$3", fromCarol), """{"body":"from carol"}""", "Bob reads Carol")

    // Carol's device is removed: Alice's key rotates and Carol cannot read on.
    val (rotatedNow, newSession, sentNow) = share(relay, alice, ROOM, listOf(bobDev))
    Checks.that(rotatedNow, "removing a device rotates the key")
    Checks.that(newSession != sessionId, "the rotated key is a new session")
    Checks.equal(sentNow, 1, "only Bob gets the new key")
    Checks.equal(relay.deliver(bob).size, 1, "Bob receives the new key")
    Checks.equal(relay.deliver(carol).size, 0, "Carol receives nothing")
    val afterRemoval = alice.encryptEvent(ROOM, "m.room.message", """{"body":"carol left"}""")
    Checks.equal(readBody(bob, ROOM, "\$4", afterRemoval), """{"body":"carol left"}""", "Bob reads on")
    Checks.throws<RoomsealException.UnknownRoomKey>("Carol reads the next event") {
        carol.decryptEvent(ROOM, "\$4", afterRemoval)
    }

    pickles(alice, bob, afterRemoval)
    hostileInput(relay, alice, bob, bobDev)
}

/** Pickle and restore mid-conversation: state, identity and replay records survive. */
fun pickles(alice: Endpoint, bob: Endpoint, alreadyRead: String) {
    val key = ByteArray(32) { it.toByte() }
    Endpoint.fromPickle(alice.pickle(key), key).use { alice2 ->
        Endpoint.fromPickle(bob.pickle(key), key).use { bob2 ->
            Checks.equal(alice2.identity(), alice.identity(), "restored identity")
            Checks.equal(bob2.deviceId(), "PHONE", "restored device id")
            val next = alice2.encryptEvent(ROOM, "m.room.message", """{"n":2}""")
            val event = bob2.decryptEvent(ROOM, "\$5", next)
            Checks.equal(event.contentJson, """{"n":2}""", "restored endpoints talk")
            Checks.equal(event.messageIndex, 1u, "the restored key continues its chain")
            Checks.throws<RoomsealException.Replay>("a replay after restore") {
                bob2.decryptEvent(ROOM, "\$other", alreadyRead)
            }
        }
    }
    Checks.throws<RoomsealException.Pickle>("restore under a wrong key") {
        Endpoint.fromPickle(bob.pickle(key), ByteArray(32)).close()
    }
    Checks.throws<RoomsealException.InvalidInput>("a short pickle key") { bob.pickle(ByteArray(5)) }
}

fun hostileInput(relay: Relay, alice: Endpoint, bob: Endpoint, bobDev: Device) {
    val envelope = alice.encryptEvent(ROOM, "m.room.message", """{"x":1}""")
    // One character in the middle of the ciphertext changed: authentication fails.
    val tampered = Regex("\"ciphertext\":\"([^\"]+)\"").replace(envelope) { match ->
        val c = match.groupValues[1]
        val i = c.length / 2
        "\"ciphertext\":\"" + c.substring(0, i) + (if (c[i] == 'A') 'B' else 'A') + c.substring(i + 1) + "\""
    }
    Checks.that(tampered != envelope, "the envelope was tampered with")
    Checks.throws<RoomsealException.Authentication>("a tampered event") { bob.decryptEvent(ROOM, "\$6", tampered) }
    Checks.equal(readBody(bob, ROOM, "\$6", envelope), """{"x":1}""", "the genuine event still reads")
    Checks.throws<RoomsealException.Replay>("the same event again") { bob.decryptEvent(ROOM, "\$7", envelope) }
    Checks.throws<RoomsealException.InvalidInput>("an envelope that is not JSON") {
        bob.decryptEvent(ROOM, "\$8", "{not json")
    }
    Checks.throws<RoomsealException.UnknownRoomKey>("a room without a key") {
        bob.decryptEvent("!other:example.org", "\$9", envelope)
    }
    Checks.throws<RoomsealException.ShareRequired>("encrypting before sharing") {
        alice.encryptEvent("!other:example.org", "m.room.message", "{}")
    }
    Checks.throws<RoomsealException.InvalidInput>("an empty user id") { Endpoint("", "D").close() }
    val forged = relay.bundle(bobDev).replace("\"PHONE\"", "\"EVIL\"")
    Checks.that(forged != relay.bundle(bobDev), "the bundle was forged")
    Checks.throws<RoomsealException.Authentication>("a forged device bundle") { Device.fromJson(forged).close() }
}

/** Several threads call into one endpoint at once; every result is exact. */
fun threads(relay: Relay, alice: Endpoint, bob: Endpoint) {
    val writers = 8
    val perWriter = 50
    val readers = 4
    share(relay, alice, THREAD_ROOM, listOf(relay.own(bob.ownDevice())))
    Checks.equal(relay.deliver(bob).size, 1, "Bob receives the thread room's key")
    alice.setRotationPolicy(100_000u, 3600uL)

    val pool = Executors.newFixedThreadPool(writers)
    try {
        val envelopes = ConcurrentLinkedQueue<String>()
        val start = CyclicBarrier(writers)
        val written = (0 until writers).map { t ->
            pool.submit {
                start.await()
                repeat(perWriter) { i ->
                    envelopes.add(alice.encryptEvent(THREAD_ROOM, "m.room.message", """{"i":$i,"t":$t}"""))
                }
            }
        }
        written.forEach { it.get(60, TimeUnit.SECONDS) }
        Checks.equal(envelopes.size, writers * perWriter, "envelopes written by $writers threads")

        val all = envelopes.toList()
        val indexes = ConcurrentLinkedQueue<Int>()
        val contents = ConcurrentLinkedQueue<String>()
        val readStart = CyclicBarrier(readers)
        val read = (0 until readers).map { r ->
            pool.submit {
                readStart.await()
                for (k in r until all.size step readers) {
                    val event = bob.decryptEvent(THREAD_ROOM, "\$t$k", all[k])
                    indexes.add(event.messageIndex.toInt())
                    contents.add(event.contentJson)
                }
            }
        }
        read.forEach { it.get(60, TimeUnit.SECONDS) }
        Checks.equal(indexes.sorted(), (0 until writers * perWriter).toList(), "every message index exactly once")
        val expected = (0 until writers).flatMap { t -> (0 until perWriter).map { i -> """{"i":$i,"t":$t}""" } }
        Checks.equal(contents.sorted(), expected.sorted(), "every content exactly once")
    } finally {
        pool.shutdownNow()
    }
}

fun main() {
    val started = System.nanoTime()
    try {
        Relay().use { relay ->
            Endpoint("@alice:example.org", "LAPTOP").use { alice ->
                Endpoint("@bob:example.org", "PHONE").use { bob ->
                    Endpoint("@carol:example.org", "TABLET").use { carol ->
                        conversation(relay, alice, bob, carol)
                        threads(relay, alice, bob)
                    }
                }
            }
        }
    } catch (e: Exception) {
        System.err.println("kotlin scenario FAILED after ${Checks.passed} checks: $e")
        println("kotlin: ${Checks.passed} passed, 1 failed")
        exitProcess(1)
    }
    val ms = (System.nanoTime() - started) / 1_000_000
    println("kotlin scenario: 3 devices, room key shared and rotated, events both ways, pickles,")
    println("  typed exceptions, 8 writer + 4 reader threads on one endpoint (JNA ${Native.VERSION}, ${ms} ms)")
    println("kotlin: ${Checks.passed} passed, 0 failed")
}
