import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy the test controls, put between the app and a shared database server so the test
 * can cut the app off without touching the server other tests use.
 * - `forward`: pipes bytes both ways.
 * - `refuse`: existing connections are reset, new ones are reset at once (a crashed server).
 * - `blackhole`: existing connections stop carrying bytes, new ones are accepted and never
 *   answered (a network partition: only timeouts notice).
 */
export class TcpProxy {
  private mode: 'forward' | 'refuse' | 'blackhole' = 'forward';
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();
  private readonly held = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    // The server needs the proxy to accept connections, and the proxy the server's port.
    const ready: { proxy?: TcpProxy } = {};
    const server = createServer((client) => ready.proxy?.accept(client, targetHost, targetPort));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP port');
    ready.proxy = new TcpProxy(server, address.port);
    return ready.proxy;
  }

  private accept(client: Socket, host: string, port: number): void {
    client.on('error', () => undefined);
    if (this.mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    if (this.mode === 'blackhole') {
      this.held.add(client);
      client.once('close', () => this.held.delete(client));
      return;
    }
    const upstream = connect(port, host);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    const pair = { client, upstream };
    this.pairs.add(pair);
    const forget = () => this.pairs.delete(pair);
    client.once('close', () => {
      upstream.destroy();
      forget();
    });
    upstream.once('close', () => {
      client.destroy();
      forget();
    });
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Cuts the database off: `refuse` resets every connection, `blackhole` goes silent. */
  cut(mode: 'refuse' | 'blackhole'): void {
    this.mode = mode;
    for (const { client, upstream } of this.pairs) {
      if (mode === 'refuse') {
        client.resetAndDestroy();
        upstream.destroy();
      } else {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    }
  }

  /**
   * Lets traffic through again. Connections silenced by `blackhole` are reset rather than
   * resumed: their clients have given up on them (timed out) and must reconnect.
   */
  restore(): void {
    this.mode = 'forward';
    for (const { client, upstream } of this.pairs) {
      if (client.isPaused()) {
        client.resetAndDestroy();
        upstream.destroy();
      }
    }
    for (const socket of this.held) socket.resetAndDestroy();
  }

  async close(): Promise<void> {
    this.restore();
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
