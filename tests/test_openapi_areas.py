"""The OpenAPI description's registry: each API area registers its part, and two may not clash."""

import pytest

from core.openapi import register_api_area
from core.openapi_document import ApiArea, build_document
from tests.conftest import build_app


def _area(name: str, order: int, **parts) -> ApiArea:
    return ApiArea(name=name, order=order, **parts)


def test_areas_are_listed_by_their_order_not_by_when_they_registered():
    document = build_document(
        [
            _area("late", 2, tags=({"name": "second"},), paths={"/api/v1/b": {}}),
            _area("early", 1, tags=({"name": "first"},), paths={"/api/v1/a": {}}),
        ]
    )
    assert [tag["name"] for tag in document["tags"]] == ["first", "second"]
    assert list(document["paths"]) == ["/api/v1/a", "/api/v1/b"]


@pytest.mark.parametrize(
    ("part", "value"),
    [
        ("paths", {"/api/v1/things": {}}),
        ("schemas", {"Thing": {"type": "object"}}),
        ("parameters", {"ThingId": {"name": "thing_id", "in": "path"}}),
        ("tags", ({"name": "things"},)),
    ],
)
def test_two_areas_may_not_describe_the_same_name(part, value):
    with pytest.raises(ValueError, match="by both one and two"):
        build_document([_area("one", 1, **{part: value}), _area("two", 2, **{part: value})])


def test_an_area_may_not_replace_the_shared_error_schema():
    with pytest.raises(ValueError, match=r"'Error' is described by both core\.openapi_document and mine"):
        build_document([_area("mine", 1, schemas={"Error": {"type": "object"}})])


def test_an_area_registered_after_the_description_is_built_is_refused(sqlite_url, clock):
    app = build_app(sqlite_url, clock)
    with pytest.raises(RuntimeError, match="late: the OpenAPI description is already built"):
        register_api_area(app, _area("late", 99, paths={"/api/v1/late": {}}))
