// Paging links under a list: an optional summary, then the previous and next
// pages' links where there are such pages.

export interface PageLink {
  href: string;
  label: string;
}

/** `swap`: the element htmx replaces with the linked page (the address bar follows); without it the links load whole pages. */
export function Pager({ summary, prev, next, swap }: { summary?: string; prev: PageLink | null; next: PageLink | null; swap?: string }) {
  const link = (page: PageLink, rel: 'prev' | 'next') =>
    swap ? (
      <a href={page.href} hx-get={page.href} hx-target={swap} hx-swap="morph:outerHTML" hx-push-url="true" rel={rel}>
        {page.label}
      </a>
    ) : (
      <a href={page.href} rel={rel}>
        {page.label}
      </a>
    );
  return (
    <nav class="pager" aria-label="Pages">
      {summary === undefined ? null : <span>{summary}</span>}
      {prev ? link(prev, 'prev') : null}
      {next ? link(next, 'next') : null}
    </nav>
  );
}
