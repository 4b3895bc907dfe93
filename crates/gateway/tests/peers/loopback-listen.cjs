// Preloaded (`node --require`) into @modelcontextprotocol/server-everything's Streamable HTTP
// server for the tests. That server calls `app.listen(PORT)`, which binds every interface;
// this makes any listen without an explicit host bind 127.0.0.1 instead, so the tests stay on
// loopback, and prints the address actually bound (run it with PORT=0 for a free port):
//
//     portcullis-e2e: listening on http://127.0.0.1:PORT
"use strict";
const net = require("node:net");

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  // listen(port[, backlog][, callback]) has no host: insert one after the port.
  const [port, second] = args;
  const portOnly =
    (typeof port === "number" || typeof port === "string") &&
    typeof second !== "string";
  if (portOnly) {
    args.splice(1, 0, "127.0.0.1");
  } else if (port && typeof port === "object" && !port.path && !port.host) {
    args[0] = { ...port, host: "127.0.0.1" };
  }
  this.once("listening", () => {
    const addr = this.address();
    if (addr && typeof addr === "object") {
      process.stderr.write(
        `portcullis-e2e: listening on http://${addr.address}:${addr.port}\n`,
      );
    }
  });
  return listen.apply(this, args);
};
