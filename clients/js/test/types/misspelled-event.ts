// Must NOT type-check: the event is "reauth-required" (a hyphen), not the server's code.
// CI asserts that tsc fails on this file, and for this reason.
import { SessionClient } from "jwt-session-client";

const session = new SessionClient();
session.addEventListener("reauth_required", () => {
  void session.reauth("wonderland");
});
