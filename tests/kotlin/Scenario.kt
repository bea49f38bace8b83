// The roomseal bindings, driven from Kotlin on the JVM: three devices, a
// relay that only moves bytes, a room key shared (and confirmed as sent),
// reshared and rotated, events both ways with the sender's user id, stored
// keys listed, exported and imported on another device, pickles with their
// generations, recovery from a rollback, a durable SQLite store (reopened,
// and a stale second handle refused), typed exceptions and one object
// called from many threads; then the Matrix machine (MatrixMachine): two
// users' three devices through a tiny in-memory homeserver, Olm sessions, a
// room key shared, events both ways, typed exceptions and a pickle restored;
// and a durable Matrix device (DurableMatrixMachine) talking to a plain one,
// reopened from its file, and a stale second handle refused then reloaded.
//
// Run by scripts/kotlin.sh (which compiles it together with the generated
// bindings/mobile/uniffi/roomseal/roomseal.kt). Every check throws on
// failure; main prints the failure and exits with status 1.

import com.sun.jna.Native
import java.io.File
import java.nio.file.Files
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.CyclicBarrier
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import kotlin.system.exitProcess
import uniffi.roomseal.*

const val ROOM = "!room:example.org"
const val CONFIRM_ROOM = "!confirm:example.org"
const val THREAD_ROOM = "!threads:example.org"
const val EXPORT_ROOM = "!export:example.org"
const val DURABLE_ROOM = "!durable:example.org"

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

/** A device message in flight, with the user the server authenticated as its sender. */
data class InFlight(val senderUserId: String, val senderKey: String, val message: String)

/** A stand-in server: published keys and pending device messages, by identity key. */
class Relay : AutoCloseable {
    private val bundles = HashMap<String, String>()
    private val oneTimeKeys = HashMap<String, ArrayDeque<String>>()
    private val inbox = HashMap<String, MutableList<InFlight>>()
    private val owned = ArrayList<Disposable>()

    /** Keeps [device] until the relay closes. */
    fun own(device: SelfSignedDevice): SelfSignedDevice = device.also { owned.add(it) }

    fun publish(endpoint: Endpoint): SelfSignedDevice {
        val upload = endpoint.keysToPublish(5u)
        Checks.equal(upload.oneTimeKeysJson.size, 5, "one-time keys to publish")
        val key = endpoint.identity().curve25519
        bundles[key] = upload.deviceKeysJson
        oneTimeKeys.getOrPut(key) { ArrayDeque() }.addAll(upload.oneTimeKeysJson)
        endpoint.markKeysAsPublished(upload)
        // Exactly what was uploaded is published: nothing is listed again.
        val again = endpoint.keysToPublish(0u)
        Checks.that(again.oneTimeKeysJson.isEmpty() && again.fallbackKeyJson == null, "nothing left to publish")
        return own(SelfSignedDevice.fromJson(upload.deviceKeysJson))
    }

    fun bundle(device: SelfSignedDevice): String = bundles.getValue(device.identity().curve25519)

    /** The device's bundle and one of its one-time keys, as a server hands them out. */
    fun claim(device: SelfSignedDevice): Pair<String, String> {
        val key = device.identity().curve25519
        return bundles.getValue(key) to oneTimeKeys.getValue(key).removeFirst()
    }

    /** Queues the share's messages and, if [confirm], confirms them as sent. */
    fun send(sender: Endpoint, share: ShareResult, confirm: Boolean = true) {
        val from = sender.identity().curve25519
        for (m in share.messages) {
            Checks.equal(m.senderKey, from, "the message names its sender's key")
            inbox.getOrPut(m.recipientKey) { ArrayList() }.add(InFlight(sender.userId(), m.senderKey, m.message))
        }
        if (confirm) Checks.equal(sender.markRoomKeySent(share), share.messages.size.toUInt(), "shares confirmed as sent")
    }

    fun deliver(endpoint: Endpoint): List<ReceivedKey> =
        (inbox.remove(endpoint.identity().curve25519) ?: emptyList())
            .map { endpoint.receiveDeviceMessage(it.senderUserId, it.senderKey, it.message) }

    override fun close() {
        owned.forEach { it.destroy() }
        owned.clear()
    }
}

/** What [share] did: whether the key rotated, its session id, how many messages went out. */
data class Shared(val rotated: Boolean, val sessionId: String, val sent: Int)

/**
 * Shares [sender]'s key of [room] with [devices], establishing sessions from
 * claimed keys when some are missing, and sends (and confirms) the messages.
 */
fun share(relay: Relay, sender: Endpoint, room: String, devices: List<SelfSignedDevice>): Shared {
    var result = sender.shareRoomKey(room, devices)
    var sent = 0
    val rotated = result.rotated
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
        Shared(rotated || it.rotated, it.sessionId, sent + it.messages.size)
    }
}

fun readBody(reader: Endpoint, room: String, eventId: String, envelope: String): String =
    reader.decryptEvent(room, eventId, envelope).contentJson

/** The published devices of the scenario's three endpoints. */
class Devices(val alice: SelfSignedDevice, val bob: SelfSignedDevice, val carol: SelfSignedDevice)

fun conversation(relay: Relay, alice: Endpoint, bob: Endpoint, carol: Endpoint, devices: Devices) {
    Checks.equal(devices.bob.userId(), "@bob:example.org", "device user id")
    Checks.equal(devices.carol.identity(), carol.identity(), "published identity")

    // Alice shares her room key with Bob and Carol (sessions from claimed keys).
    val first = share(relay, alice, ROOM, listOf(devices.bob, devices.carol))
    Checks.that(!first.rotated, "the first share does not rotate")
    Checks.equal(first.sent, 2, "messages for two devices")
    for (reader in listOf(bob, carol)) {
        val received = relay.deliver(reader).single()
        Checks.equal(received.roomId, ROOM, "received room")
        Checks.equal(received.sessionId, first.sessionId, "received session")
        Checks.equal(received.sender, alice.identity(), "received sender")
        Checks.equal(received.senderUserId, "@alice:example.org", "received sender user")
        Checks.equal(received.senderDeviceId, "LAPTOP", "received sender device")
        Checks.equal(received.firstIndex, 0u, "received first index")
        Checks.equal(received.status, KeyStatus.NEW, "the key is new")
    }
    // Confirmed as sent: the next share serves nobody again.
    alice.shareRoomKey(ROOM, listOf(devices.bob, devices.carol)).use {
        Checks.that(it.messages.isEmpty() && !it.rotated, "confirmed devices are not served again")
    }

    val hello = alice.encryptEvent(ROOM, "m.room.message", """{"body":"hello both"}""")
    Checks.that("hello both" !in hello, "the envelope hides the plaintext")
    for (reader in listOf(bob, carol)) {
        val event = reader.decryptEvent(ROOM, "\$1", hello)
        Checks.equal(event.eventType, "m.room.message", "event type")
        Checks.equal(event.contentJson, """{"body":"hello both"}""", "event content")
        Checks.equal(event.sender, alice.identity(), "event sender")
        Checks.equal(event.senderUserId, "@alice:example.org", "event sender user")
        Checks.equal(event.senderDeviceId, "LAPTOP", "event sender device")
        Checks.equal(event.messageIndex, 0u, "event index")
        Checks.that(event.authenticated, "event authenticated")
    }

    // The other way: Bob and Carol share their own keys and write back.
    share(relay, bob, ROOM, listOf(devices.alice, devices.carol))
    share(relay, carol, ROOM, listOf(devices.alice, devices.bob))
    Checks.equal(relay.deliver(alice).map { it.senderUserId }.sorted(), listOf("@bob:example.org", "@carol:example.org"),
        "Alice receives Bob's and Carol's keys")
    Checks.equal(relay.deliver(bob).size, 1, "Bob receives Carol's key")
    Checks.equal(relay.deliver(carol).size, 1, "Carol receives Bob's key")
    val fromBob = bob.encryptEvent(ROOM, "m.room.message", """{"body":"from bob"}""")
    val fromCarol = carol.encryptEvent(ROOM, "m.room.message", """{"body":"from carol"}""")
    Checks.equal(readBody(alice, ROOM, "\$2", fromBob), """{"body":"from bob"}""", "Alice reads Bob")
    Checks.equal(readBody(carol, ROOM, "\$2", fromBob), """{"body":"from bob"}""", "Carol reads Bob")
    Checks.equal(alice.decryptEvent(ROOM, "\$3", fromCarol).senderUserId, "@carol:example.org", "Alice reads Carol")
    Checks.equal(readBody(bob, ROOM, "\$3", fromCarol), """{"body":"from carol"}""", "Bob reads Carol")

    // Carol's device is removed: Alice's key rotates and Carol cannot read on.
    val afterCarol = share(relay, alice, ROOM, listOf(devices.bob))
    Checks.that(afterCarol.rotated, "removing a device rotates the key")
    Checks.that(afterCarol.sessionId != first.sessionId, "the rotated key is a new session")
    Checks.equal(afterCarol.sent, 1, "only Bob gets the new key")
    Checks.equal(relay.deliver(bob).single().status, KeyStatus.NEW, "Bob receives the new key")
    Checks.equal(relay.deliver(carol).size, 0, "Carol receives nothing")
    val afterRemoval = alice.encryptEvent(ROOM, "m.room.message", """{"body":"carol left"}""")
    Checks.equal(readBody(bob, ROOM, "\$4", afterRemoval), """{"body":"carol left"}""", "Bob reads on")
    Checks.throws<RoomsealException.UnknownRoomKey>("Carol reads the next event") {
        carol.decryptEvent(ROOM, "\$4", afterRemoval)
    }

    pickles(alice, bob, afterRemoval)
    hostileInput(relay, alice, bob, devices.bob)
}

/** Unconfirmed shares are served again; a confirmed recipient can be sent the key once more on request. */
fun confirmation(relay: Relay, alice: Endpoint, bob: Endpoint, devices: Devices) {
    val firstSession = alice.shareRoomKey(CONFIRM_ROOM, listOf(devices.bob)).use { first ->
        Checks.equal(first.messages.size, 1, "Bob has a session: one message")
        relay.send(alice, first, confirm = false)
        first.sessionId
    }
    // Never confirmed (say, the app stopped before sending): Bob is served
    // again, with the same key.
    alice.shareRoomKey(CONFIRM_ROOM, listOf(devices.bob)).use { again ->
        Checks.equal(again.sessionId, firstSession, "the same key is served again")
        Checks.equal(again.messages.size, 1, "the unconfirmed device is served again")
        relay.send(alice, again)
    }
    Checks.equal(relay.deliver(bob).map { it.status }, listOf(KeyStatus.NEW, KeyStatus.UNCHANGED),
        "the second copy is not new")
    alice.shareRoomKey(CONFIRM_ROOM, listOf(devices.bob)).use {
        Checks.that(it.messages.isEmpty(), "a confirmed device is not served again")
    }
    // Bob reports the key missing: a message for him alone. Carol was never
    // offered this room's key: nothing to reshare.
    val reshared = alice.reshareRoomKey(CONFIRM_ROOM, devices.bob)
    Checks.equal(reshared?.recipientKey, bob.identity().curve25519, "the reshare is for Bob")
    Checks.equal(bob.receiveDeviceMessage(alice.userId(), reshared!!.senderKey, reshared.message).status,
        KeyStatus.UNCHANGED, "the reshared key is known")
    Checks.equal(alice.reshareRoomKey(CONFIRM_ROOM, devices.carol), null, "no reshare for a device never offered it")

    // Bob's stored keys: listed (no secrets), and one forgotten.
    val stored = bob.roomKeys().single { it.roomId == CONFIRM_ROOM }
    Checks.equal(stored.sessionId, firstSession, "stored session")
    Checks.equal(stored.sender, alice.identity(), "stored sender")
    Checks.equal(stored.senderUserId, "@alice:example.org", "stored sender user")
    Checks.equal(stored.firstIndex, 0u, "stored first index")
    Checks.equal(stored.authenticatedFrom, 0u, "stored key authenticated from its first index")
    Checks.that(stored.sizeBytes > 0uL, "stored size")
    Checks.that(bob.forgetRoomKey(CONFIRM_ROOM, stored.sessionId), "the key is forgotten")
    Checks.that(!bob.forgetRoomKey(CONFIRM_ROOM, stored.sessionId), "only once")
    Checks.that(bob.roomKeys().none { it.roomId == CONFIRM_ROOM }, "the listing no longer has it")
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

/**
 * Generations: the same state pickles at the same generation, a changed one
 * higher; an old pickle is refused; continuing from it anyway needs
 * recoverFromRollback (a new room key, new sessions, new keys to publish).
 */
fun generations(alice: Endpoint, devices: Devices) {
    val key = ByteArray(32) { (it * 7).toByte() }
    val old = alice.pickle(key)
    val oldGeneration = alice.pickleGeneration()
    alice.pickle(key)
    Checks.equal(alice.pickleGeneration(), oldGeneration, "the same state keeps its generation")
    alice.encryptEvent(ROOM, "m.room.message", """{"n":"gen"}""")
    val new = alice.pickle(key)
    val newest = alice.pickleGeneration()
    Checks.that(newest > oldGeneration, "a changed state has a higher generation")
    Endpoint.fromPickleNoOlderThan(new, key, newest).use {
        Checks.equal(it.pickleGeneration(), newest, "the newest pickle restores")
    }
    Checks.throws<RoomsealException.Pickle>("an older pickle is refused") {
        Endpoint.fromPickleNoOlderThan(old, key, newest).close()
    }

    Endpoint.fromPickle(old, key).use { rolledBack ->
        rolledBack.recoverFromRollback()
        val refused = Checks.throws<RoomsealException.ShareRequired>("no room key after a rollback") {
            rolledBack.encryptEvent(ROOM, "m.room.message", "{}")
        }
        Checks.that("rolled back" in refused.message.orEmpty(), "the refusal says why: ${refused.message}")
        rolledBack.shareRoomKey(ROOM, listOf(devices.bob)).use {
            Checks.that(it.rotated, "the next share rotates")
            Checks.equal(it.rotationReason, "the state was rolled back", "rotation reason")
            Checks.that(it.messages.isEmpty(), "no message on an old session")
            Checks.equal(it.missingSessions.size, 1, "a new session is needed with Bob")
        }
        val upload = rolledBack.keysToPublish(3u)
        Checks.equal(upload.oneTimeKeysJson.size, 3, "new one-time keys after a rollback")
        Checks.that(upload.fallbackKeyJson != null, "a new fallback key after a rollback")
        rolledBack.markKeysAsPublished(upload)
    }
}

fun hostileInput(relay: Relay, alice: Endpoint, bob: Endpoint, bobDev: SelfSignedDevice) {
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
    val share = Checks.throws<RoomsealException.ShareRequired>("encrypting before sharing") {
        alice.encryptEvent("!other:example.org", "m.room.message", "{}")
    }
    Checks.that("not been shared" in share.message.orEmpty(), "the refusal says why: ${share.message}")
    Checks.throws<RoomsealException.InvalidInput>("an empty user id") { Endpoint("", "D").close() }
    Checks.throws<RoomsealException.InvalidInput>("a key that is not base64") {
        bob.receiveDeviceMessage(alice.userId(), "%%%", "AQE")
    }
    val forged = relay.bundle(bobDev).replace("\"PHONE\"", "\"EVIL\"")
    Checks.that(forged != relay.bundle(bobDev), "the bundle was forged")
    Checks.throws<RoomsealException.Authentication>("a forged device bundle") { SelfSignedDevice.fromJson(forged).close() }
}

/** A share delivered as if another user sent it is refused. */
fun spoofedSender(relay: Relay, carol: Endpoint, alice: Endpoint, devices: Devices) {
    val room = "!spoof:example.org"
    carol.shareRoomKey(room, listOf(devices.alice)).use { outcome ->
        val m = outcome.messages.single()
        Checks.throws<RoomsealException.Authentication>("a share from a spoofed user") {
            alice.receiveDeviceMessage("@mallory:example.org", m.senderKey, m.message)
        }
        Checks.equal(alice.receiveDeviceMessage(carol.userId(), m.senderKey, m.message).senderUserId,
            "@carol:example.org", "the genuine sender is accepted")
    }
}

/** Bob backs a room key up from index 1; a new device of his imports it and reads from there on. */
fun exportImport(relay: Relay, alice: Endpoint, bob: Endpoint, devices: Devices) {
    share(relay, alice, EXPORT_ROOM, listOf(devices.bob))
    Checks.equal(relay.deliver(bob).single().status, KeyStatus.NEW, "Bob receives the key to back up")
    val first = alice.encryptEvent(EXPORT_ROOM, "m.room.message", """{"n":0}""")
    val second = alice.encryptEvent(EXPORT_ROOM, "m.room.message", """{"n":1}""")
    val stored = bob.roomKeys().single { it.roomId == EXPORT_ROOM }
    val export = bob.exportRoomKey(EXPORT_ROOM, stored.sessionId, 1u)
    Checks.that(export != null, "the stored key exports at index 1")
    Checks.equal(export!!.firstIndex, 1u, "export first index")
    Checks.equal(export.sender, alice.identity(), "export sender")
    Endpoint("@bob:example.org", "BACKUP").use { backup ->
        Checks.equal(backup.importRoomKey(EXPORT_ROOM, export.sender, export.export), KeyStatus.NEW, "imported key is new")
        Checks.equal(backup.importRoomKey(EXPORT_ROOM, export.sender, export.export), KeyStatus.UNCHANGED,
            "importing it again changes nothing")
        val imported = backup.roomKeys().single()
        Checks.equal(imported.sessionId, stored.sessionId, "imported session")
        Checks.equal(imported.firstIndex, 1u, "imported first index")
        Checks.equal(imported.authenticatedFrom, null, "an import is not authenticated")
        val event = backup.decryptEvent(EXPORT_ROOM, "\$x2", second)
        Checks.equal(event.contentJson, """{"n":1}""", "the import reads from its index")
        Checks.that(!event.authenticated, "events read with an import are not authenticated")
        Checks.throws<RoomsealException>("an event before the export's index") {
            backup.decryptEvent(EXPORT_ROOM, "\$x1", first)
        }
        Checks.throws<RoomsealException.InvalidInput>("an export that is not one") {
            backup.importRoomKey(EXPORT_ROOM, export.sender, "not an export")
        }
    }
}

/**
 * A device kept in a SQLite store: every call commits before it returns, so
 * it reopens where it was (no pickle); a second handle on the same file is
 * refused once stale, reloads, and goes on.
 */
fun durable(relay: Relay, bob: Endpoint, devices: Devices) {
    val dir = Files.createTempDirectory("roomseal-kotlin").toFile()
    try {
        val path = File(dir, "dave.sqlite3").path
        val key = ByteArray(32) { (it + 1).toByte() }
        val identity = DurableEndpoint.create(path, key, "@dave:example.org", "DESKTOP").use { dave ->
            val (bundle, oneTimeKey) = relay.claim(devices.bob)
            relay.own(dave.establishSession(bundle, oneTimeKey))
            dave.shareRoomKey(DURABLE_ROOM, listOf(devices.bob)).use { shared ->
                for (m in shared.messages) bob.receiveDeviceMessage(dave.userId(), m.senderKey, m.message)
                Checks.equal(dave.markRoomKeySent(shared), 1u, "the durable share is confirmed")
            }
            val before = dave.storeGeneration()
            val envelope = dave.encryptEvent(DURABLE_ROOM, "m.room.message", """{"n":0}""")
            Checks.equal(dave.storeGeneration(), before + 1uL, "one commit per operation")
            Checks.equal(bob.decryptEvent(DURABLE_ROOM, "\$d0", envelope).messageIndex, 0u, "Bob reads the durable device")
            dave.identity()
        }
        DurableEndpoint.open(path, key).use { dave ->
            Checks.equal(dave.identity(), identity, "the store reopens the same device")
            val next = dave.encryptEvent(DURABLE_ROOM, "m.room.message", """{"n":1}""")
            Checks.equal(bob.decryptEvent(DURABLE_ROOM, "\$d1", next).messageIndex, 1u, "the ratchet went on")
            DurableEndpoint.open(path, key).use { other ->
                dave.encryptEvent(DURABLE_ROOM, "m.room.message", "{}")
                val stale = Checks.throws<RoomsealException.StaleStore>("a stale handle") {
                    other.encryptEvent(DURABLE_ROOM, "m.room.message", "{}")
                }
                Checks.that("another writer" in stale.message.orEmpty(), "the refusal says why: ${stale.message}")
                val late = other.encryptEvent(DURABLE_ROOM, "m.room.message", "{}")
                Checks.equal(bob.decryptEvent(DURABLE_ROOM, "\$d3", late).messageIndex, 3u, "the reloaded handle goes on")
            }
        }
        Checks.throws<RoomsealException.Store>("a store opened under another key") {
            DurableEndpoint.open(path, ByteArray(32)).close()
        }
    } finally {
        dir.deleteRecursively()
    }
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

// ---- The Matrix machine (MatrixMachine): two users' devices through a tiny in-memory homeserver ----

const val MATRIX_ROOM = "!matrix:example.org"
const val M_ALICE = "@alice:example.org"
const val M_BOB = "@bob:example.org"

/** Just enough JSON for the test homeserver (objects, arrays, strings, numbers, booleans, null). */
object Json {
    fun parse(text: String): Any? {
        val p = Parser(text)
        val value = p.value()
        p.ws()
        if (p.i != text.length) throw IllegalArgumentException("trailing JSON")
        return value
    }

    fun write(value: Any?): String = StringBuilder().also { write(it, value) }.toString()

    private fun write(out: StringBuilder, value: Any?) {
        when (value) {
            null -> out.append("null")
            is String -> {
                out.append('"')
                for (c in value) when {
                    c == '"' -> out.append("\\\"")
                    c == '\\' -> out.append("\\\\")
                    c < ' ' -> out.append(String.format("\\u%04x", c.code))
                    else -> out.append(c)
                }
                out.append('"')
            }
            is Map<*, *> -> {
                out.append('{')
                value.entries.forEachIndexed { n, (k, v) ->
                    if (n > 0) out.append(',')
                    write(out, k as String)
                    out.append(':')
                    write(out, v)
                }
                out.append('}')
            }
            is List<*> -> {
                out.append('[')
                value.forEachIndexed { n, v -> if (n > 0) out.append(','); write(out, v) }
                out.append(']')
            }
            else -> out.append(value.toString())
        }
    }

    private class Parser(val s: String) {
        var i = 0
        fun ws() { while (i < s.length && s[i].isWhitespace()) i++ }
        fun value(): Any? {
            ws()
            return when (s[i]) {
                '{' -> {
                    i++
                    val m = LinkedHashMap<String, Any?>()
                    ws()
                    if (s[i] == '}') {
                        i++
                        return m
                    }
                    do {
                        ws()
                        val k = string()
                        ws()
                        check(s[i++] == ':')
                        m[k] = value()
                        ws()
                        val next = s[i++]
                    } while (next == ',')
                    m
                }
                '[' -> {
                    i++
                    val l = ArrayList<Any?>()
                    ws()
                    if (s[i] == ']') {
                        i++
                        return l
                    }
                    do {
                        l.add(value())
                        ws()
                        val next = s[i++]
                    } while (next == ',')
                    l
                }
                '"' -> string()
                't' -> { i += 4; true }
                'f' -> { i += 5; false }
                'n' -> { i += 4; null }
                else -> {
                    val start = i
                    while (i < s.length && (s[i].isDigit() || s[i] in "+-.eE")) i++
                    s.substring(start, i).toLong()
                }
            }
        }
        fun string(): String {
            check(s[i++] == '"')
            val out = StringBuilder()
            while (s[i] != '"') {
                if (s[i] == '\\') {
                    i++
                    when (val c = s[i++]) {
                        'u' -> { out.append(s.substring(i, i + 4).toInt(16).toChar()); i += 4 }
                        'n' -> out.append('\n')
                        't' -> out.append('\t')
                        else -> out.append(c)
                    }
                } else out.append(s[i++])
            }
            i++
            return out.toString()
        }
    }
}

@Suppress("UNCHECKED_CAST")
fun obj(value: Any?): MutableMap<String, Any?> = value as MutableMap<String, Any?>

/** Routes /keys/upload, /keys/query, /keys/claim and /sendToDevice; builds each device's /sync. */
class Homeserver {
    val deviceKeys = LinkedHashMap<String, LinkedHashMap<String, Any?>>()
    private val oneTimeKeys = HashMap<Pair<String, String>, LinkedHashMap<String, Any?>>()
    private val inbox = HashMap<Pair<String, String>, MutableList<Any?>>()
    private val changed = HashMap<Pair<String, String>, MutableSet<String>>()
    private var nextEvent = 0

    fun route(user: String, device: String, request: MatrixRequest): String {
        val me = user to device
        val body = obj(Json.parse(request.bodyJson))
        return when (request.kind) {
            MatrixRequestKind.KEYS_UPLOAD -> {
                body["device_keys"]?.let {
                    deviceKeys.getOrPut(user) { LinkedHashMap() }[device] = it
                    for ((u, ds) in deviceKeys) for (d in ds.keys) if ((u to d) != me) changed.getOrPut(u to d) { HashSet() }.add(user)
                }
                body["one_time_keys"]?.let { oneTimeKeys.getOrPut(me) { LinkedHashMap() }.putAll(obj(it)) }
                Json.write(mapOf("one_time_key_counts" to mapOf("signed_curve25519" to (oneTimeKeys[me]?.size ?: 0))))
            }
            MatrixRequestKind.KEYS_QUERY -> {
                val out = LinkedHashMap<String, Any?>()
                for (u in obj(body["device_keys"]).keys) out[u] = deviceKeys[u] ?: emptyMap<String, Any?>()
                Json.write(mapOf("device_keys" to out, "failures" to emptyMap<String, Any?>()))
            }
            MatrixRequestKind.KEYS_CLAIM -> {
                val out = LinkedHashMap<String, Any?>()
                for ((u, ds) in obj(body["one_time_keys"])) for (d in obj(ds).keys) {
                    val stock = oneTimeKeys[u to d] ?: continue
                    val name = stock.keys.firstOrNull() ?: continue
                    obj(out.getOrPut(u) { LinkedHashMap<String, Any?>() })[d] = mapOf(name to stock.remove(name))
                }
                Json.write(mapOf("one_time_keys" to out, "failures" to emptyMap<String, Any?>()))
            }
            MatrixRequestKind.TO_DEVICE -> {
                Checks.that(request.eventType != null && request.txnId != null, "a to-device request names its event type and txn id")
                for ((u, ds) in obj(body["messages"])) for ((d, content) in obj(ds)) {
                    inbox.getOrPut(u to d) { ArrayList() }.add(mapOf("type" to request.eventType, "sender" to user, "content" to content))
                }
                "{}"
            }
        }
    }

    fun sync(user: String, device: String): String = Json.write(mapOf(
        "next_batch" to "s",
        "to_device" to mapOf("events" to (inbox.remove(user to device) ?: emptyList<Any?>())),
        "device_lists" to mapOf("changed" to (changed.remove(user to device)?.toList() ?: emptyList()), "left" to emptyList<String>()),
        "device_one_time_keys_count" to mapOf("signed_curve25519" to (oneTimeKeys[user to device]?.size ?: 0)),
    ))

    fun sendEvent(sender: String, contentJson: String): String {
        nextEvent++
        return Json.write(mapOf(
            "type" to "m.room.encrypted", "event_id" to "\$k$nextEvent", "sender" to sender,
            "origin_server_ts" to 1_700_000_000_000L + nextEvent, "room_id" to MATRIX_ROOM,
            "content" to Json.parse(contentJson),
        ))
    }
}

/** The calls the app loop makes: the same on a MatrixMachine and a DurableMatrixMachine. */
interface MatrixCalls {
    fun outgoingRequests(): List<MatrixRequest>
    fun markRequestAsSent(requestId: ULong, responseJson: String): MatrixResponseResult
    fun receiveSyncChanges(syncJson: String): MatrixSyncResult
    fun updateTrackedUsers(users: List<String>): List<String>
    fun keysClaimRequest(users: List<String>): MatrixRequest?
    fun shareRoomKey(roomId: String, users: List<String>): MatrixShareResult
    fun encryptRoomEvent(roomId: String, eventType: String, contentJson: String): String
    fun decryptRoomEvent(roomId: String, eventJson: String): MatrixRoomEvent
}

class PlainCalls(machine: MatrixMachine) : MatrixCalls, MatrixMachineInterface by machine
class DurableCalls(machine: DurableMatrixMachine) : MatrixCalls, DurableMatrixMachineInterface by machine

/** One Matrix machine (in memory or durable) and the app loop around it; [calls] reaches the loop's calls on it. */
class MatrixClient<M>(val server: Homeserver, val user: String, val device: String, var machine: M, val calls: (M) -> MatrixCalls) {
    private val loop get() = calls(machine)

    fun answer(request: MatrixRequest): MatrixResponseResult =
        loop.markRequestAsSent(request.requestId, server.route(user, device, request))

    fun pump() {
        repeat(20) {
            val requests = loop.outgoingRequests()
            if (requests.isEmpty()) return
            requests.forEach { answer(it) }
        }
        throw CheckFailed("$device: requests keep coming")
    }

    fun sync(): MatrixSyncResult {
        val result = loop.receiveSyncChanges(server.sync(user, device))
        Checks.that(result.rejected.isEmpty(), "$device: no to-device event refused (${result.rejected})")
        pump()
        return result
    }

    fun share(members: List<String>): MatrixShareResult {
        loop.updateTrackedUsers(members)
        pump()
        loop.keysClaimRequest(members)?.let { answer(it) }
        val result = loop.shareRoomKey(MATRIX_ROOM, members)
        result.requests.forEach { answer(it) }
        pump()
        return result
    }

    fun send(members: List<String>, body: String): String {
        share(members)
        return server.sendEvent(user, loop.encryptRoomEvent(MATRIX_ROOM, "m.room.message", Json.write(mapOf("body" to body))))
    }

    fun read(event: String): String =
        obj(Json.parse(loop.decryptRoomEvent(MATRIX_ROOM, event).contentJson))["body"] as String
}

/** A client of a new in-memory MatrixMachine. */
fun plainClient(server: Homeserver, user: String, device: String) =
    MatrixClient(server, user, device, MatrixMachine(user, device), ::PlainCalls)

fun matrixScenario() {
    val server = Homeserver()
    val members = listOf(M_ALICE, M_BOB)
    val a1 = plainClient(server, M_ALICE, "ALICE1")
    val a2 = plainClient(server, M_ALICE, "ALICE2")
    val b1 = plainClient(server, M_BOB, "BOB1")
    val all = listOf(a1, a2, b1)
    fun settle() = repeat(2) { all.forEach { it.sync() } }
    all.forEach { it.pump() }
    // Every device tracks the room's members (their devices are queried).
    all.forEach {
        Checks.equal(it.machine.updateTrackedUsers(members), emptyList<String>(), "${it.device} tracks the members")
        it.pump()
    }
    settle()
    Checks.equal(b1.machine.devices(M_ALICE).map { it.deviceId }, listOf("ALICE1", "ALICE2"), "bob knows alice's devices")
    Checks.equal(a1.machine.identity().curve25519,
        obj(obj(server.deviceKeys[M_ALICE]!!["ALICE1"])["keys"])["curve25519:ALICE1"], "uploaded identity key")

    // Alice shares and sends; bob and her other device read it, authenticated.
    val hello = a1.send(members, "hello from alice (kotlin)")
    settle()
    Checks.that(a1.machine.hasOlmSession(M_BOB, "BOB1"), "alice has an Olm session with bob")
    for (reader in listOf(b1, a2)) {
        val clear = reader.machine.decryptRoomEvent(MATRIX_ROOM, hello)
        Checks.equal(obj(Json.parse(clear.contentJson))["body"], "hello from alice (kotlin)", "${reader.device} reads alice")
        Checks.equal(clear.sender to clear.senderDevice, M_ALICE to "ALICE1", "sender of alice's event")
        Checks.that(clear.authenticated && !clear.forwarded, "alice's event is authenticated")
    }
    // And bob's reply goes the other way.
    val reply = b1.send(members, "hello from bob (kotlin)")
    settle()
    Checks.equal(a1.read(reply), "hello from bob (kotlin)", "alice reads bob")
    Checks.equal(a2.read(reply), "hello from bob (kotlin)", "alice's second device reads bob")

    // Typed exceptions; nothing changed, the next call works.
    val keysBefore = b1.machine.roomKeys()
    Checks.throws<RoomsealException.InvalidInput>("truncated event") { b1.machine.decryptRoomEvent(MATRIX_ROOM, hello.dropLast(5)) }
    Checks.throws<RoomsealException.InvalidInput>("sync of the wrong shape") { b1.machine.receiveSyncChanges("{\"to_device\": {\"events\": 5}}") }
    Checks.throws<RoomsealException.Replay>("replayed event") { b1.machine.decryptRoomEvent(MATRIX_ROOM, hello.replace("\"event_id\":\"", "\"event_id\":\"\$again")) }
    Checks.throws<RoomsealException.UnknownRequest>("unknown request id") { b1.machine.markRequestAsSent(424242uL, "{}") }
    Checks.throws<RoomsealException.InvalidInput>("invalid user id") { MatrixMachine("nobody", "D") }
    Checks.equal(b1.machine.roomKeys(), keysBefore, "room keys unchanged by refused calls")
    Checks.equal(b1.read(hello), "hello from alice (kotlin)", "the genuine event still reads")

    // Pickle and restore bob, then go on both ways.
    val key = ByteArray(32) { (it * 7 + 1).toByte() }
    val pickle = b1.machine.pickle(key)
    val generation = b1.machine.pickleGeneration()
    b1.machine.destroy()
    b1.machine = MatrixMachine.fromPickle(pickle, key)
    Checks.equal(b1.machine.pickleGeneration(), generation, "restored generation")
    Checks.throws<RoomsealException.Pickle>("pickle under a wrong key") { MatrixMachine.fromPickle(pickle, ByteArray(32)) }
    val after = a1.send(members, "after bob's restore")
    val back = b1.send(members, "bob, restored")
    settle()
    Checks.equal(b1.read(after), "after bob's restore", "restored bob reads alice")
    Checks.equal(a1.read(back), "bob, restored", "alice reads restored bob")
    Checks.equal(b1.read(hello), "hello from alice (kotlin)", "restored bob still reads the first event")
    all.forEach { it.machine.destroy() }
}

/**
 * A Matrix device kept in a SQLite file (DurableMatrixMachine) talking to a
 * plain MatrixMachine: every call commits before it returns, so it reopens
 * from its file where it was (no pickle) and goes on; a second handle on the
 * file is refused once stale, reloads, and goes on.
 */
fun durableMatrix() {
    val dir = Files.createTempDirectory("roomseal-kotlin-matrix").toFile()
    try {
        val server = Homeserver()
        val members = listOf(M_ALICE, M_BOB)
        val path = File(dir, "alice.sqlite3").path
        val key = ByteArray(32) { (it * 5 + 3).toByte() }
        val alice = MatrixClient(server, M_ALICE, "ALICE1", DurableMatrixMachine.create(path, key, M_ALICE, "ALICE1"), ::DurableCalls)
        val bob = plainClient(server, M_BOB, "BOB1")
        fun settle() = repeat(2) { alice.sync(); bob.sync() }
        alice.pump()
        bob.pump()
        val first = alice.send(members, "durable hello (kotlin)")
        settle()
        Checks.equal(bob.read(first), "durable hello (kotlin)", "bob reads the durable Matrix device")
        val reply = bob.send(members, "plain reply (kotlin)")
        settle()
        Checks.equal(alice.read(reply), "plain reply (kotlin)", "the durable Matrix device reads bob")
        val identity = alice.machine.identity()
        val generation = alice.machine.storeGeneration()
        alice.machine.close()

        // Opened again from its file (as after a crash): it goes on both ways.
        alice.machine = DurableMatrixMachine.open(path, key)
        Checks.equal(alice.machine.identity(), identity, "the Matrix store reopens the same device")
        Checks.equal(alice.machine.storeGeneration(), generation, "reopened at the generation it was closed at")
        Checks.equal(alice.read(reply), "plain reply (kotlin)", "the reopened device still reads bob's event")
        val second = alice.send(members, "after reopening (kotlin)")
        val later = bob.send(members, "plain, later (kotlin)")
        settle()
        Checks.equal(bob.machine.decryptRoomEvent(MATRIX_ROOM, second).messageIndex, 1u, "the Megolm ratchet went on")
        Checks.equal(alice.read(later), "plain, later (kotlin)", "the reopened device reads bob's next event")

        // A second handle on the file: stale once the first writes, refused, reloaded, and it goes on.
        DurableMatrixMachine.open(path, key).use { other ->
            val written = alice.send(members, "from the first handle (kotlin)")
            val stale = Checks.throws<RoomsealException.StaleStore>("a stale Matrix handle") {
                other.encryptRoomEvent(MATRIX_ROOM, "m.room.message", """{"body":"stale"}""")
            }
            Checks.that("another writer" in stale.message.orEmpty(), "the refusal says why: ${stale.message}")
            other.reload()
            Checks.equal(other.storeGeneration(), alice.machine.storeGeneration(), "the reloaded handle is current")
            val late = server.sendEvent(M_ALICE, other.encryptRoomEvent(MATRIX_ROOM, "m.room.message", """{"body":"reloaded (kotlin)"}"""))
            settle()
            Checks.equal(bob.read(written), "from the first handle (kotlin)", "bob reads the first handle")
            Checks.equal(bob.read(late), "reloaded (kotlin)", "bob reads the reloaded handle")
        }
        Checks.throws<RoomsealException.Store>("a Matrix store opened under another key") {
            DurableMatrixMachine.open(path, ByteArray(32)).close()
        }
        alice.machine.close()
        bob.machine.close()
    } finally {
        dir.deleteRecursively()
    }
}

fun main() {
    val started = System.nanoTime()
    try {
        Relay().use { relay ->
            Endpoint("@alice:example.org", "LAPTOP").use { alice ->
                Endpoint("@bob:example.org", "PHONE").use { bob ->
                    Endpoint("@carol:example.org", "TABLET").use { carol ->
                        val devices = Devices(relay.publish(alice), relay.publish(bob), relay.publish(carol))
                        conversation(relay, alice, bob, carol, devices)
                        confirmation(relay, alice, bob, devices)
                        generations(alice, devices)
                        spoofedSender(relay, carol, alice, devices)
                        exportImport(relay, alice, bob, devices)
                        durable(relay, bob, devices)
                        threads(relay, alice, bob)
                        matrixScenario()
                        durableMatrix()
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
    println("kotlin scenario: 3 devices, room key shared, confirmed, reshared and rotated, events both ways,")
    println("  stored keys listed, exported and imported, pickles and generations, rollback recovery,")
    println("  a durable SQLite store reopened and a stale handle refused, typed exceptions,")
    println("  8 writer + 4 reader threads on one endpoint,")
    println("  and the Matrix machine: 3 devices of 2 users, Olm sessions, room key shared, events both ways,")
    println("  typed exceptions, a pickle restored; a durable Matrix device reopened from its file,")
    println("  a stale handle refused then reloaded (JNA ${Native.VERSION}, ${ms} ms)")
    println("kotlin: ${Checks.passed} passed, 0 failed")
}
