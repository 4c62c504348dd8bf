// Built-in templates a deployment may replace (Flower's template_path):
// `npm start -- --template-path DIR` loads DIR/layout.js when present, an ES
// module whose default export takes the same props as layouts/base.tsx
// ({ ui, title, section, children }) and returns hono/jsx or hono/html
// markup. Only the layout is replaceable: it is where branding, extra
// styles and scripts go; pages keep their structure so htmx keeps working.

import type { Child } from 'hono/jsx';
import type { UiOptions } from '../src/ui/context';
import { Layout as BuiltInLayout, type Section } from './layouts/base';

export interface LayoutProps {
  ui: UiOptions;
  title: string;
  section: Section;
  children: Child;
}

type LayoutComponent = (props: LayoutProps) => unknown;

let layout: LayoutComponent = BuiltInLayout;

export function useLayout(component: LayoutComponent): void {
  layout = component;
}

/** The page shell every page renders through. */
export function Page(props: LayoutProps) {
  return layout(props) as ReturnType<typeof BuiltInLayout>;
}
