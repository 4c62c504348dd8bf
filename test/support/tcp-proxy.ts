// A TCP proxy in front of a local service (RabbitMQ by default) whose
// connections a test can cut, or stop and start again on the same port.

import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly port: number,
    private readonly upstreamPort = 5672,
  ) {}

  async up(): Promise<void> {
    const server = createServer((client) => {
      const upstream = tcpConnect(this.upstreamPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  /** Drop every connection (the service sees its client vanish); new ones still get through. */
  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** Drop every connection and stop listening. */
  async down(): Promise<void> {
    this.cut();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
