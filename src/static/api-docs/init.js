// Renders the OpenAPI document served at /openapi.json (Swagger UI, served by Flowgate itself: no CDN).
window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    // "Try it out" sends real requests with the credential entered under Authorize.
    tryItOutEnabled: false,
    persistAuthorization: false,
  });
});
