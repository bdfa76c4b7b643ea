import { isRecord } from './jwt.js';
import type { Clock, SignOutReason } from './types.js';

/**
 * The part of a `BroadcastChannel` the client uses. The browser's (and Deno's, Bun's, Node's)
 * `BroadcastChannel` has it; tests pass a fake.
 */
export interface BroadcastChannelLike {
  /** Sends a structured-cloneable message to every other channel of the same name and origin. */
  postMessage(message: unknown): void;
  /**
   * Receives the other channels' messages: `listener` gets `MessageEvent`-like objects, whose
   * `data` is the message. (`unknown`, so that every runtime's `BroadcastChannel` type fits.)
   */
  addEventListener(type: 'message', listener: (event: unknown) => void): void;
  /** Stops receiving. */
  close(): void;
}

/** The part of the Web Locks API (`navigator.locks`) the client uses. */
export interface LockManagerLike {
  /**
   * Runs `callback` while holding the exclusive lock `name` (across every tab and worker of the
   * origin), releasing it when the returned promise settles.
   */
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

/** Cross-tab coordination settings (`crossTab` option of {@link OtpAuthClient}). */
export interface CrossTabOptions {
  /**
   * Name of the `BroadcastChannel` (and, with `:refresh` appended, of the Web Lock). Clients of
   * the same auth service must share it; default `nestjs-otp-auth:<base URL><prefix>`.
   */
  readonly channelName?: string;
  /** Creates the channel; default `new BroadcastChannel(name)`. */
  readonly createChannel?: (name: string) => BroadcastChannelLike;
  /** The Web Locks manager; default `navigator.locks` when present; `null` to do without. */
  readonly locks?: LockManagerLike | null;
  /**
   * How long `restore()` waits for another tab to share its access token before refreshing
   * itself, in ms; default 150. `0` skips asking.
   */
  readonly peerTimeout?: number;
}

/**
 * The wire protocol between tabs (each message also carries `protocol` and the sender's `from`).
 * Access tokens travel, refresh tokens never do.
 */
export type CrossTabMessage =
  | {
      /** A token to adopt: after a sign-in or refresh, or in answer to `query`. */
      readonly type: 'session';
      /** `signed_in`: a new session (sign-in, TOTP confirmation); `refreshed`: the same one, refreshed. */
      readonly kind: 'signed_in' | 'refreshed';
      /** The access token. */
      readonly accessToken: string;
      /** Its expiry, ms since the epoch (the machine's clock, which tabs share). */
      readonly expiresAt: number;
      /** When the sender received it, ms (with `expiresAt`: its lifetime, for the leeway). */
      readonly receivedAt: number;
    }
  | {
      /** The session ended: every tab signs out. */
      readonly type: 'signed_out';
      /** Why. */
      readonly reason: SignOutReason;
    }
  | {
      /** A tab that just loaded asks for the current token (answered with `session`). */
      readonly type: 'query';
    }
  | {
      /** The sender started a refresh: a tab granted the lock next waits for its result. */
      readonly type: 'refreshing';
    }
  | {
      /** The sender's refresh ended (its `session` or `signed_out`, if any, came first). */
      readonly type: 'refresh_done';
    };

const PROTOCOL = 'nestjs-otp-auth-client/1';
const SIGN_OUT_REASONS: readonly string[] = ['logout', 'logout_all', 'session_ended'];
/** Without Web Locks: how long a tab waits for another tab that announced a refresh. */
const PEER_REFRESH_WAIT_MS = 10_000;

/** A message from another tab, checked field by field (anything else on the channel is ignored). */
function parseMessage(data: unknown): { from: string; message: CrossTabMessage } | null {
  if (!isRecord(data) || data['protocol'] !== PROTOCOL || typeof data['from'] !== 'string') return null;
  const from = data['from'];
  switch (data['type']) {
    case 'session': {
      const { kind, accessToken, expiresAt, receivedAt } = data;
      if (
        (kind !== 'signed_in' && kind !== 'refreshed') ||
        typeof accessToken !== 'string' ||
        typeof expiresAt !== 'number' ||
        typeof receivedAt !== 'number'
      ) {
        return null;
      }
      return { from, message: { type: 'session', kind, accessToken, expiresAt, receivedAt } };
    }
    case 'signed_out': {
      const reason = data['reason'];
      if (typeof reason !== 'string' || !SIGN_OUT_REASONS.includes(reason)) return null;
      return { from, message: { type: 'signed_out', reason: reason as SignOutReason } };
    }
    case 'query':
    case 'refreshing':
    case 'refresh_done':
      return { from, message: { type: data['type'] } };
    default:
      return null;
  }
}

/** What this runtime offers for cross-tab coordination. */
export interface RuntimeCrossTabSupport {
  /** Creates a `BroadcastChannel`, if the runtime has them. */
  readonly channel: ((name: string) => BroadcastChannelLike) | undefined;
  /** `navigator.locks`, if present. */
  readonly locks: LockManagerLike | undefined;
  /** Whether this is a browser page (a `document` exists): the default for `crossTab`. */
  readonly isBrowserPage: boolean;
}

/** `BroadcastChannel` and `navigator.locks` of this runtime, if any. */
export function runtimeCrossTabSupport(): RuntimeCrossTabSupport {
  const global = globalThis as unknown as {
    BroadcastChannel?: new (name: string) => BroadcastChannelLike;
    navigator?: { locks?: LockManagerLike };
    document?: unknown;
  };
  const Channel = global.BroadcastChannel;
  return {
    channel: Channel ? (name) => new Channel(name) : undefined,
    locks: global.navigator?.locks,
    isBrowserPage: typeof global.document === 'object' && global.document !== null,
  };
}

/** What a {@link CrossTabCoordinator} works with. */
export interface CoordinatorOptions {
  /** The channel shared by the tabs. */
  readonly channel: BroadcastChannelLike;
  /** The Web Locks manager, or null (announcements only). */
  readonly locks: LockManagerLike | null;
  /** Name of the refresh lock. */
  readonly lockName: string;
  /** For the wait on another tab's refresh. */
  readonly clock: Clock;
  /** Handles the other tabs' messages. */
  readonly onMessage: (message: CrossTabMessage) => void;
}

/**
 * Coordinates the clients of one auth service across tabs (see the README, "Cross-tab"):
 * shares access tokens and sign-outs over a `BroadcastChannel`, and makes refreshes exclusive
 * with a Web Lock, or, without Web Locks, by announcing them so that other tabs wait.
 */
export class CrossTabCoordinator {
  /** This tab's id in messages. */
  readonly id: string;
  private readonly channel: BroadcastChannelLike;
  private peerRefreshUntil = 0;
  private readonly peerWaiters = new Set<() => void>();
  private closed = false;

  /**
   * @param options - The channel, the lock manager (or null), the lock's name, the clock, and
   *   the handler for other tabs' messages.
   */
  constructor(private readonly options: CoordinatorOptions) {
    this.id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
    this.channel = options.channel;
    this.channel.addEventListener('message', (event) => {
      if (typeof event === 'object' && event !== null) this.receive((event as { data?: unknown }).data);
    });
  }

  /** Sends a message to the other tabs. */
  post(message: CrossTabMessage): void {
    if (this.closed) return;
    try {
      this.channel.postMessage({ protocol: PROTOCOL, from: this.id, ...message });
    } catch {
      // A closed or broken channel: the tabs fall back to refreshing on their own.
    }
  }

  /**
   * Runs a refresh so that no other tab refreshes at the same time, and so that a tab that
   * waited sees the result of the one before it:
   *
   * - With Web Locks, under the exclusive lock. Without, unguarded (two tabs may then refresh
   *   at once; the server's `refreshReuseGracePeriod` makes that harmless).
   * - Inside, if another tab announced a refresh that has not finished (its result can arrive
   *   after this tab got the lock: messages and lock grants are not ordered), wait for its
   *   result (at most 10 s), then announce this one. The caller checks, once inside, whether a
   *   token from another tab arrived meanwhile.
   * - Afterwards, `refresh_done` tells waiting tabs to look (the new token itself is broadcast
   *   by the caller before that).
   */
  async exclusive<T>(refresh: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.options.clock.now() < this.peerRefreshUntil) await this.waitForPeer();
      this.post({ type: 'refreshing' });
      try {
        return await refresh();
      } finally {
        this.post({ type: 'refresh_done' });
      }
    };
    const { locks, lockName } = this.options;
    return locks ? locks.request(lockName, run) : run();
  }

  /** Stops listening; later posts are dropped. */
  close(): void {
    this.closed = true;
    this.release();
    try {
      this.channel.close();
    } catch {
      // already closed
    }
  }

  private receive(data: unknown): void {
    if (this.closed) return;
    const parsed = parseMessage(data);
    if (!parsed || parsed.from === this.id) return;
    const { message } = parsed;
    if (message.type === 'refreshing') {
      this.peerRefreshUntil = this.options.clock.now() + PEER_REFRESH_WAIT_MS;
    } else if (message.type !== 'query') {
      this.release();
    }
    this.options.onMessage(message);
  }

  private release(): void {
    this.peerRefreshUntil = 0;
    for (const wake of [...this.peerWaiters]) wake();
  }

  private waitForPeer(): Promise<void> {
    return new Promise((resolve) => {
      const { clock } = this.options;
      const done = (): void => {
        clock.clearTimeout(timer);
        this.peerWaiters.delete(done);
        resolve();
      };
      const timer = clock.setTimeout(done, Math.max(0, this.peerRefreshUntil - clock.now()));
      this.peerWaiters.add(done);
    });
  }
}
