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
                "properties": {"error": {"type": "string", "description": "stable code: auth.required, auth.token, access.denied, access.undeclared, csrf.origin, csrf.token, web.busy"},
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
                      "process": {"type": "string"}, "at": {"type": "string"}, "atLocal": {"type": "string"}}}},
                  "atLocal": {"type": "string", "description": "at, in the building's time zone with its abbreviation"},
                  "tlsSHA256": {"type": "string"},
                  "box": {"$ref": "#/components/schemas/Box"}}},
              "Box": {"type": "object", "required": ["name", "building", "softwareVersion", "uptimeSeconds", "utc", "local", "timeZone", "clock"],
                "properties": {"name": {"type": "string"}, "building": {"type": "string"}, "softwareVersion": {"type": "string"},
                  "uptimeSeconds": {"type": "number"}, "utc": {"type": "string", "format": "date-time"}, "local": {"type": "string"},
                  "timeZone": {"type": "string"}, "identitySHA256": {"type": "string"}, "tlsSHA256": {"type": "string"},
                  "clock": {"type": "object", "properties": {"synchronised": {"type": "boolean"}, "offsetMs": {"type": "number"},
                    "maxErrorMs": {"type": "number"}}}}},
              "Plots": {"type": "object", "required": ["times", "labels", "bucketSeconds", "cameras", "disks"],
                "properties": {"times": {"type": "array", "items": {"type": "string", "format": "date-time"}},
                  "labels": {"type": "array", "items": {"type": "string"}}, "bucketSeconds": {"type": "integer"},
                  "cameras": {"type": "array", "items": {"type": "object", "required": ["id", "bitsPerSecond"],
                    "properties": {"id": {"type": "string"}, "bitsPerSecond": {"type": "array", "items": {"type": "number"}}}}},
                  "disks": {"type": "array", "items": {"type": "object", "required": ["name", "usedBytes", "capacityBytes"],
                    "properties": {"name": {"type": "string"}, "usedBytes": {"type": "array", "items": {"type": "integer"}},
                      "capacityBytes": {"type": "integer"}}}}}},
              "AuditCheckpoint": {"type": "object", "required": ["box", "number", "seq", "head", "timeMicros", "publicKey", "signature"],
                "description": "the audit chain's head signed with the box's Ed25519 identity key (RFC 8032)",
                "properties": {"box": {"type": "string"}, "number": {"type": "integer"}, "seq": {"type": "integer"},
                  "head": {"type": "string"}, "timeMicros": {"type": "integer"}, "publicKey": {"type": "string", "contentEncoding": "base64"},
                  "signature": {"type": "string", "contentEncoding": "base64"}}}
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
            "/api/v1/cameras/{camera}/thumbnail.jpg": {"get": {"summary": "The camera's newest recorded keyframe as a JPEG at most 320 px wide (cached 10 s; audited)", "security": [{"session": []}],
              "parameters": [{"name": "camera", "in": "path", "required": true, "schema": {"type": "string", "maxLength": 64}}],
              "responses": {"200": {"description": "the picture", "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
                "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"},
                "404": {"description": "no such camera for this user, or nothing recorded yet", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
                "503": {"description": "the picture could not be made", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}}}},
            "/api/v1/plots": {"get": {"summary": "The last 24 h in 10-minute buckets: bit rate per camera (this user's) and recordings per disk, from the recording indexes", "security": [{"session": []}],
              "responses": {"200": {"description": "series", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Plots"}}}},
                "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"}}}},
            "/api/v1/audit/checkpoint": {"post": {"summary": "Sign the audit chain's head now (building-admin and up; audited)", "security": [{"session": []}],
              "responses": {"200": {"description": "the new checkpoint, also published retained on the bus", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AuditCheckpoint"}}}},
                "401": {"$ref": "#/components/responses/Unauthorized"}, "403": {"$ref": "#/components/responses/Forbidden"},
                "503": {"description": "no identity key"}}}},
            "/api/v1/openapi.json": {"get": {"summary": "This document", "security": [],
              "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/metrics": {"get": {"summary": "Prometheus text exposition", "security": [{"metricsToken": []}],
              "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
                "401": {"$ref": "#/components/responses/Unauthorized"}}}}
          }
        }
        """#
}
