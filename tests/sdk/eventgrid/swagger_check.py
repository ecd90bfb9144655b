"""Checks an event's ``data`` against its model in the Event Grid swagger (events.md §3, §8 step 3).

No parser looks inside ``data`` (events.md §8), so this does: each model's ``allOf`` chain is folded
into one property list and one ``required`` list; a required field must be present; a present field
must have the modelled type (``string``; ``integer`` as a whole JSON number, never a string;
``format: date-time`` as RFC 3339 with a zone; arrays, maps and nested models recursively);
``{type: object}`` without properties is free-form; and every identifier carries ``rawId`` and
``communicationUser.id`` (what real chat events carry, events.md §3.1).

The swagger is read as it is, with its relative ``$ref``s to common.json resolved on disk.
"""

import json
import os
import re
from datetime import datetime

SWAGGER_PATH = (
    "eventgrid/data-plane/Microsoft.Communication/stable/2018-01-01/AzureCommunicationServices.json"
)

# RFC 3339 date-time with a zone (the service mixes `Z` and `+00:00` and up to 7 fractional digits,
# events.md §3.2); datetime.fromisoformat then checks the calendar.
RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)

CIM = "CommunicationIdentifierModel"


def parse_rfc3339(value):
    """The instant of an RFC 3339 string, or None if it is not one."""
    if not isinstance(value, str):
        return None
    m = RFC3339.match(value)
    if not m:
        return None
    date, time_, frac, zone = m.groups()
    # fromisoformat in 3.11 takes at most 6 fractional digits; the service writes up to 7.
    frac = (frac or ".0")[:7]
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        return datetime.fromisoformat(f"{date}T{time_}{frac}{zone}")
    except ValueError:
        return None


class Swagger:
    """The chat models of the swagger, by event type."""

    def __init__(self, eventgrid_dir):
        self.root = os.path.join(eventgrid_dir, "specification")
        self._docs = {}
        main = os.path.join(self.root, SWAGGER_PATH)
        self.main = main
        definitions = self._doc(main)["definitions"]
        # Each *EventData definition names its event type in its description (SOURCES.md).
        self.model_of_type = {}
        pattern = re.compile(r"for an? (Microsoft\.Communication\.Chat\w+) event")
        for name, model in definitions.items():
            m = pattern.search(model.get("description", ""))
            if m and name.endswith("EventData"):
                self.model_of_type[m.group(1)] = name

    def _doc(self, path):
        path = os.path.normpath(path)
        if path not in self._docs:
            with open(path, encoding="utf-8") as f:
                self._docs[path] = json.load(f)
        return self._docs[path]

    def resolve(self, ref, base):
        """(schema, name, file) of a $ref relative to the file `base`."""
        file_part, _, pointer = ref.partition("#")
        path = os.path.normpath(os.path.join(os.path.dirname(base), file_part)) if file_part else base
        node = self._doc(path)
        for part in pointer.strip("/").split("/"):
            node = node[part]
        return node, pointer.rsplit("/", 1)[-1], path

    def fold(self, schema, base):
        """(properties {name: (schema, file)}, required set) of a schema with its allOf chain."""
        properties, required = {}, set()
        for parent in schema.get("allOf", []):
            target, _, path = self.resolve(parent["$ref"], base)
            p, r = self.fold(target, path)
            properties.update(p)
            required |= r
        for name, prop in schema.get("properties", {}).items():
            properties[name] = (prop, base)
        required |= set(schema.get("required", []))
        return properties, required

    def check_event_data(self, event_type, data):
        """Every defect of `data` for `event_type`, as "path: problem" strings (empty: it conforms)."""
        name = self.model_of_type.get(event_type)
        if name is None:
            return [f"no swagger model names {event_type}"]
        model = self._doc(self.main)["definitions"][name]
        errors = []
        self._check(model, self.main, data, "data", errors, name)
        return errors

    def _check(self, schema, base, value, where, errors, name=None):
        if "$ref" in schema:
            target, name, path = self.resolve(schema["$ref"], base)
            return self._check(target, path, value, where, errors, name)
        kind = schema.get("type")
        if "allOf" in schema or "properties" in schema:
            kind = "object"
        if kind == "string" or ("enum" in schema and kind is None):
            if not isinstance(value, str):
                errors.append(f"{where}: {value!r} is not a string")
            elif schema.get("format") == "date-time" and parse_rfc3339(value) is None:
                errors.append(f"{where}: {value!r} is not an RFC 3339 date-time")
            return
        if kind == "integer":
            # bool is an int in Python; a JSON true is no int64.
            if not isinstance(value, int) or isinstance(value, bool):
                errors.append(f"{where}: {value!r} is not a JSON integer")
            return
        if kind == "number":
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                errors.append(f"{where}: {value!r} is not a JSON number")
            return
        if kind == "boolean":
            if not isinstance(value, bool):
                errors.append(f"{where}: {value!r} is not a boolean")
            return
        if kind == "array":
            if not isinstance(value, list):
                errors.append(f"{where}: {value!r} is not an array")
                return
            for i, item in enumerate(value):
                self._check(schema.get("items", {}), base, item, f"{where}[{i}]", errors)
            return
        if kind == "object":
            if not any(k in schema for k in ("properties", "allOf", "additionalProperties")):
                # `{type: object}` alone is free-form (events.md §8 step 3): the thread
                # `properties` map's values, e.g. the topic string.
                return
            if not isinstance(value, dict):
                errors.append(f"{where}: {value!r} is not an object")
                return
            properties, required = self.fold(schema, base)
            for field in sorted(required):
                if field not in value:
                    errors.append(f"{where}.{field}: required by {name or 'the model'}, missing")
            for field, (prop, prop_base) in properties.items():
                if field in value:
                    self._check(prop, prop_base, value[field], f"{where}.{field}", errors)
            extra = schema.get("additionalProperties")
            if isinstance(extra, dict) and extra:
                for key, item in value.items():
                    if key not in properties:
                        self._check(extra, base, item, f"{where}[{key!r}]", errors)
            if name == CIM:
                # events.md §3.1: chat events carry rawId and communicationUser.id (the same string).
                raw = value.get("rawId")
                user = value.get("communicationUser")
                if not isinstance(raw, str) or not raw:
                    errors.append(f"{where}.rawId: missing or empty")
                if not isinstance(user, dict) or user.get("id") != raw:
                    errors.append(f"{where}.communicationUser.id: {user!r} does not carry rawId {raw!r}")
            return
        # No type: free-form.
