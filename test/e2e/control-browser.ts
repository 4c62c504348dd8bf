// A page for the control tests in Chromium: like browser.ts's watched page,
// but it accepts confirm dialogs (the control actions ask before they act)
// and records each one, so a test can tell which confirmations appeared.

import type { Browser, BrowserContext, Page } from 'playwright-core';

export interface ControlPage {
  readonly context: BrowserContext;
  readonly page: Page;
  /** `confirm: <message>` for each dialog shown (all were accepted). */
  readonly dialogs: string[];
  /** Uncaught errors thrown by the page's scripts. */
  readonly pageErrors: string[];
  close(): Promise<void>;
}

export async function openControlPage(browser: Browser, baseURL: string, viewport = { width: 1280, height: 900 }): Promise<ControlPage> {
  const context = await browser.newContext({ baseURL, viewport });
  context.setDefaultTimeout(10_000);
  context.setDefaultNavigationTimeout(15_000);
  const page = await context.newPage();
  const dialogs: string[] = [];
  const pageErrors: string[] = [];
  page.on('dialog', (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void dialog.accept().catch(() => undefined);
  });
  page.on('pageerror', (error) => pageErrors.push(error.message));
  return { context, page, dialogs, pageErrors, close: () => context.close() };
}
