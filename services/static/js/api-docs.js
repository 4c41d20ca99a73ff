// The interactive API docs: Swagger UI from the vendored bundle, over this server's OpenAPI
// document. A file of its own (not an inline script) so that the strict CSP holds here too.
"use strict";
window.addEventListener("DOMContentLoaded", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    validatorUrl: null, // no badge fetched from the validator service: nothing leaves this server
  });
});
