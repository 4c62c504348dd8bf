// What the Worker answers while its bindings are wrong: a standalone page
// (the app itself could not be built), every problem listed, no secret shown.

export function ConfigErrorPage({ problems }: { problems: string[] }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <title>Stalk is not configured</title>
      </head>
      <body>
        <h1>Stalk is not configured</h1>
        <p>The Worker's bindings need fixing:</p>
        <ul>
          {problems.map((p) => (
            <li>
              <code>{p}</code>
            </li>
          ))}
        </ul>
        <p>
          Secrets are set with <code>wrangler secret put NAME</code>; vars live in <code>wrangler.toml</code>.
        </p>
      </body>
    </html>
  );
}
