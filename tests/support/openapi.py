"""Check a real answer against the response schema the served OpenAPI description documents."""

from __future__ import annotations

from jsonschema import Draft202012Validator

DOCUMENT_URL = "/api/v1/openapi.json"


def build_document() -> dict:
    """The description as a newly created application serves it, built of the API areas its packages register."""
    from app import create_app

    config = {"KRISRUTIN_ENV": "testing", "DATABASE_URL": "sqlite://", "SECRET_KEY": "openapi-document-" * 3}
    return create_app(config).test_client().get(DOCUMENT_URL).get_json()


def documented_response(document: dict, method: str, template: str, status: int) -> dict:
    """The response object documented for ``method template`` answering ``status`` ($ref resolved)."""
    operation = document["paths"][template][method.lower()]
    assert str(status) in operation["responses"], f"{method} {template} does not document {status}"
    response = operation["responses"][str(status)]
    if "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response


def assert_documented(document: dict, response, method: str, template: str) -> None:
    """The answer's status is documented for the operation and its JSON body matches the schema."""
    documented = documented_response(document, method, template, response.status_code)
    assert response.mimetype == "application/json"
    schema = documented["content"]["application/json"]["schema"]
    # The document as the root resource, so that "#/components/schemas/..." resolves.
    root = {"allOf": [schema], "components": document["components"]}
    validator = Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(response.get_json()), key=lambda error: list(error.path))
    assert not errors, f"{method} {template} {response.status_code}: " + "; ".join(
        f"{list(error.path)}: {error.message}" for error in errors
    )
