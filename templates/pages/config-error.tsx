// What the Worker answers while its bindings are wrong, or before a sign-in
// method is configured: a standalone page (the app itself may not have been
// built), every problem listed, no secret shown.

export function ConfigErrorPage({ problems, lead }: { problems: string[]; lead?: string | undefined }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>Stalk is not configured</title>
        {/* /static/* is served before the Worker runs, configured or not. */}
        <link rel="stylesheet" href="/static/stalk.css" />
      </head>
      <body>
        <main id="main" class="config-error">
          <h1>Stalk is not configured</h1>
          <p>{lead ?? "The Worker's bindings need fixing:"}</p>
          <ul>
            {problems.map((p) => (
              <li>{p}</li>
            ))}
          </ul>
          <p>
            Secrets are set with <code>wrangler secret put NAME</code>; vars live in <code>wrangler.toml</code>.
          </p>
        </main>
      </body>
    </html>
  );
}
