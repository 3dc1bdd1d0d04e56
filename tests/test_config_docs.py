"""The configuration is documented: every schema property has a description, and every key is in
config/README.md.

Key paths are dotted (`pathomics.mil.lr`); the entries of a free-named mapping (the schema's
`additionalProperties`, e.g. `models.tasks`) are written `{task}` (the mapping's name without its
plural s): `models.tasks.{task}.horizon_months`. The README's convention: a key is documented by
a table row whose first cell holds its full dotted path in backticks (several keys may share a
row). Keys with keys below them are documented through those.
"""

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "config/schemas/config.schema.yaml").read_text())
README = (REPO / "config/README.md").read_text()

# JSON Schema keywords the schema may use on a property; anything else is a slip (e.g. a comma
# in an unquoted flow-style description that YAML reads as a new key)
KEYWORDS = {
    "$ref", "description", "type", "enum", "const", "default", "properties", "required",
    "additionalProperties", "propertyNames", "items", "minItems", "maxItems", "uniqueItems",
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "pattern", "oneOf", "anyOf",
    "allOf",
}  # fmt: skip


def _resolve(schema: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        schema = {**SCHEMA["$defs"][name], **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def schema_properties(schema: dict, path: str = ""):
    """(dotted path, property schema as written) of every property, through nested
    `properties`, `items`, `additionalProperties`, `oneOf` / `anyOf` / `allOf` and `$ref`."""
    schema = _resolve(schema)
    for name, sub in schema.get("properties", {}).items():
        key = f"{path}.{name}" if path else name
        yield key, sub
        yield from schema_properties(sub, key)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        yield from schema_properties(extra, f"{path}.{{{path.rsplit('.', 1)[-1].removesuffix('s')}}}")
    if isinstance(schema.get("items"), dict):
        yield from schema_properties(schema["items"], f"{path}[]")
    for keyword in ("oneOf", "anyOf", "allOf"):
        for branch in schema.get(keyword, []):
            yield from schema_properties(branch, path)


PROPERTIES = list(schema_properties(SCHEMA))
KEYS = sorted({key for key, _ in PROPERTIES})
LEAVES = [key for key in KEYS if not any(other.startswith(key + ".") for other in KEYS)]


def documented_keys(readme: str) -> set[str]:
    """Backticked names in the first cell of every table row."""
    keys = set()
    for line in readme.splitlines():
        if line.startswith("|"):
            first_cell = line.split("|")[1]
            keys.update(re.findall(r"`([^`]+)`", first_cell))
    return keys


def test_the_walk_reaches_nested_defs_and_free_named_entries():
    assert {"pathomics.mil.lr", "models.tasks.{task}.selection.lasso", "cohort.tcia.series_rules.modality"} <= set(KEYS)
    assert len(KEYS) > 250


def test_every_property_has_a_description():
    lacking = sorted({key for key, sub in PROPERTIES if not str(sub.get("description") or "").strip()})
    assert not lacking, f"{len(lacking)} schema properties without a description: {', '.join(lacking)}"


def test_properties_use_only_json_schema_keywords():
    odd = sorted({f"{key}: {word!r}" for key, sub in PROPERTIES for word in set(sub) - KEYWORDS})
    assert not odd, odd


def test_every_key_is_documented_in_the_config_readme():
    missing = [key for key in LEAVES if key not in documented_keys(README)]
    assert not missing, f"{len(missing)} keys not in a table row of config/README.md: {', '.join(missing)}"


def test_the_config_readme_documents_only_schema_keys():
    assert not documented_keys(README) - set(KEYS), sorted(documented_keys(README) - set(KEYS))


@pytest.mark.parametrize(
    "text, keys",
    [
        ("| `a.b`, `a.c` | 1 | x `not.this` |", {"a.b", "a.c"}),
        ("| key | default | meaning |\n| --- | --- | --- |", set()),
        ("not a row `a.b`", set()),
    ],
)
def test_documented_keys_reads_the_first_cell_of_table_rows(text, keys):
    assert documented_keys(text) == keys
