// The browser bundle: livekit-client as the global LivekitClient, for the demo page and the tests' pages.
export * from 'livekit-client';
