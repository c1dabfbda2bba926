"""pytest's hooks for this test suite (shared helpers live in their own modules, e.g. tests/ppca.py)."""

def pytest_collection_modifyitems(config, items):
    """Browser tests that open the same page run one after another, so that the checks which only
    look at a page share one load of it (``_look`` in tests/test_browser.py). The order is stable:
    a page's checks keep the file's order, and tests of no particular page come first."""

    def page(item) -> str:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "page_path" not in params:
            return ""
        prefix = "student/_build/html" if params.get("edition") == "student" else "html"
        return f"{prefix}/{params['page_path']}"

    in_browser = [i for i in items if i.get_closest_marker("browser")]
    ordered = iter(sorted(in_browser, key=page))
    items[:] = [next(ordered) if i.get_closest_marker("browser") else i for i in items]
