// What scripts/e2e-synapse.sh hands a scenario (see the comment at the top of the script), and
// the file through which a scenario tells the leak check what it must not find on the server.
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** The run's environment: homeserver URL, server name, registered users, secrets directory. */
export function scenarioEnv() {
  const need = (name) => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set: run this scenario through scripts/e2e-synapse.sh`);
    return v;
  };
  const users = JSON.parse(readFileSync(need("E2E_USERS_FILE"), "utf8"));
  return {
    homeserver: need("E2E_HOMESERVER"),
    serverName: need("E2E_SERVER_NAME"),
    users: users.users,
    admin: users.users[users.admin],
    adminName: users.admin,
    secretsDir: need("E2E_SECRETS_DIR"),
    workDir: need("E2E_WORK_DIR"),
  };
}

/** Appends secrets to E2E_SECRETS_DIR/<file>.jsonl in the leak check's format. */
export class SecretLog {
  constructor(dir, file) {
    this.path = join(dir, `${file}.jsonl`);
    this.count = 0;
  }

  #write(record) {
    appendFileSync(this.path, JSON.stringify(record) + "\n");
    this.count += 1;
  }

  text(label, text) {
    this.#write({ label, text });
  }

  bytes(label, bytes) {
    this.#write({ label, bytes_b64: Buffer.from(bytes).toString("base64") });
  }

  /**
   * Records every room key of an engine's export (exportRoomKeys): the whole exported key and,
   * apart, its 128-byte ratchet, which every form of that key contains (the m.room_key
   * session_key sent to devices, an export at any index of the same ratchet step). Returns how
   * many keys it recorded.
   */
  roomKeys(owner, exported) {
    for (const k of exported) {
      const key = Buffer.from(k.session_key, "base64");
      // Export format: version (1 byte), first known index (4), ratchet (128), signing key (32).
      if (key.length !== 165) throw new Error(`unexpected exported room key length ${key.length}`);
      const label = `room key ${k.session_id} held by ${owner}`;
      this.bytes(`${label} (exported)`, key);
      this.bytes(`${label} (ratchet)`, key.subarray(5, 133));
    }
    return exported.length;
  }
}
