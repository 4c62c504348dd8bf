/** public/static/vendor/, where the copies go. */
export declare const VENDOR_DIR: string;
/** Copy htmx and idiomorph into VENDOR_DIR; returns the served file names. */
export declare function vendorAssets(): string[];
