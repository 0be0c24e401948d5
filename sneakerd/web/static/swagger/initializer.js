// sneakerd's Swagger UI shows sneakerd's own OpenAPI document and nothing else.
//
// The page lives on the shop's origin, next to the shopper's token in localStorage, so it takes
// no configuration from its address: queryConfigEnabled is false (Swagger UI ignores ?url= and
// ?configUrl=), the document's URL is fixed here, and nothing is sent to an outside validator.
// This file is served rather than inlined so the page's Content-Security-Policy can allow
// scripts from this origin only.
"use strict";

window.ui = SwaggerUIBundle({
  url: "/api/docs/openapi.json",
  dom_id: "#swagger-ui",
  queryConfigEnabled: false,
  validatorUrl: null,
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
