/// The OpenAPI 3.1 description of the JSON API and the routes tools use, served at `/api/v1/openapi.json`.
/// A test keeps it in step with the route table (every `/api/v1/` route, `/login`, `/logout`, `/metrics`).
enum OpenAPI {
    // swift-format-ignore
    static let document = #"""
        {
          "openapi": "3.1.0",
          "info": {"title": "Hallwatch box web API", "version": "1.0.0",
            "description": "The box's own web API. Sign in with POST /login (form) to get the session cookie; state-changing requests need Origin: https://<box> and the session's CSRF token."},
          "servers": [{"url": "/"}],
          "components": {
            "securitySchemes": {
              "session": {"type": "apiKey", "in": "cookie", "name": "__Host-hallwatch-session"},
              "metricsToken": {"type": "http", "scheme": "bearer"}
            },
            "schemas": {
              "Problem": {"type": "object", "required": ["error", "message"],
                "properties": {"error": {"type": "string", "description": "stable code: auth.required, auth.token, access.denied, access.undeclared, csrf.origin, csrf.token, web.busy, live.camera, live.stream, live.upgrade, live.unavailable"},
                  "message": {"type": "string"}}},
              "Camera": {"type": "object", "required": ["id", "state"],
                "properties": {
                  "id": {"type": "string"},
                  "state": {"type": "string", "enum": ["connecting", "online", "offline", "unknown"]},
                  "reasonCode": {"type": "string"}, "reasonMessage": {"type": "string"},
                  "codec": {"type": "string"}, "width": {"type": "integer"}, "height": {"type": "integer"},
                  "fps": {"type": "number"}, "bitrateBps": {"type": "integer"},
                  "recordedSeconds": {"type": "number"}, "lastFragmentAgeSeconds": {"type": "number"}}},
              "CameraList": {"type": "object", "required": ["cameras"],
                "properties": {"cameras": {"type": "array", "items": {"$ref": "#/components/schemas/Camera"}}}},
              "Status": {"type": "object", "required": ["at", "cameras", "disks", "processes", "alarms"],
                "properties": {
                  "at": {"type": "string", "format": "date-time"},
                  "cameras": {"type": "array", "items": {"$ref": "#/components/schemas/Camera"}},
                  "disks": {"type": "array", "items": {"type": "object", "required": ["name", "health", "freeSlots", "slotCount", "cameras"],
                    "properties": {"name": {"type": "string"}, "health": {"type": "string", "enum": ["healthy", "failed", "quarantined", "missing"]},
                      "reasonCode": {"type": "string"}, "freeSlots": {"type": "integer"}, "slotCount": {"type": "integer"},
                      "cameras": {"type": "array", "items": {"type": "string"}}}}},
                  "processes": {"type": "array", "items": {"type": "object", "required": ["name", "state", "pid"],
                    "properties": {"name": {"type": "string"}, "state": {"type": "string", "enum": ["up", "stopping", "down"]}, "pid": {"type": "integer"}}}},
                  "alarms": {"type": "array", "items": {"type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "camera": {"type": "string"},
                      "process": {"type": "string"}, "at": {"type": "string"}}}},
                  "tlsSHA256": {"type": "string"}}}
            },
            "responses": {
              "Unauthorized": {"description": "no live session (or token)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
              "Forbidden": {"description": "refused", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            }
          },
          "paths": {
            "/login": {"post": {"summary": "Sign in", "security": [],
              "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object", "required": ["username", "password"],
                "properties": {"username": {"type": "string", "maxLength": 64}, "password": {"type": "string", "maxLength": 1024}}}}}},
              "responses": {"303": {"description": "signed in; Set-Cookie carries the session; Location: /"},
                "400": {"description": "missing or too long fields"}, "401": {"description": "wrong user name or password (the same answer for both)"},
                "403": {"$ref": "#/components/responses/Forbidden"}, "413": {"description": "form too large"},
                "429": {"description": "throttled; Retry-After in seconds"}}}},
            "/logout": {"post": {"summary": "Sign out (ends the session on the server)", "security": [{"session": []}],
              "responses": {"303": {"description": "signed out; Location: /login"}, "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Forbidden"}}}},
            "/api/v1/status": {"get": {"summary": "The box's status, cut to the cameras this user may see", "security": [{"session": []}],
              "responses": {"200": {"description": "status", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}}},
                "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}}}},
            "/api/v1/events": {"get": {"summary": "Server-sent events: 'status' with a Status whenever it changes", "security": [{"session": []}],
              "responses": {"200": {"description": "event stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"},
                "503": {"description": "too many live pages open"}}}},
            "/api/v1/cameras": {"get": {"summary": "The cameras this user may see, with their state (audited)", "security": [{"session": []}],
              "responses": {"200": {"description": "cameras", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CameraList"}}}},
                "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}}}},
            "/api/v1/cameras/{id}/live": {"get": {"summary": "Live video as a WebSocket (RFC 6455; audited: live.start, live.end)",
              "description": "Upgrade to a WebSocket from this origin (Origin checked). Messages: text {type:init, camera, codec (RFC 6381, from the init segment's avcC/hvcC), width, height, initId}; binary init segment and media chunks, each with a 12-byte header (byte 0: 1 init, 2 media; byte 1 bit 0: keyframe; bytes 4-11: the recorder's receive time, float64 ms since the epoch, little-endian) then ISO/IEC 14496-12 boxes; text {type:drop, skipped} when this client fell behind and media resumes at the next keyframe; text {type:error, code, message}.",
              "security": [{"session": []}],
              "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                {"name": "stream", "in": "query", "required": false, "schema": {"type": "string", "enum": ["main"], "default": "main"}}],
              "responses": {"101": {"description": "switching to the WebSocket protocol"},
                "400": {"description": "not a WebSocket upgrade (live.upgrade)"}, "401": {"$ref": "#/components/responses/Unauthorized"},
                "403": {"$ref": "#/components/responses/Forbidden"},
                "404": {"description": "no such camera, or not one this user may see (live.camera); no such stream (live.stream)"},
                "503": {"description": "the live tap is not available (live.unavailable)"}}}},
            "/api/v1/openapi.json": {"get": {"summary": "This document", "security": [],
              "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/metrics": {"get": {"summary": "Prometheus text exposition", "security": [{"metricsToken": []}],
              "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
                "401": {"$ref": "#/components/responses/Unauthorized"}}}}
          }
        }
        """#
}
