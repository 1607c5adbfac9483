"""DCAT-AP export of the catalogue as JSON-LD (DCAT-AP 3: dcat:Catalog of dcat:Dataset, each
with its publisher, access rights, frequency, licence and a distribution through the NGSI-LD
API)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from cityhub.governance.datasets import Dataset, Tier

CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "cityhub": "urn:cityhub:vocab:",
}
# EU access-right vocabulary (publications office) for each tier.
ACCESS_RIGHTS = {
    Tier.PUBLIC: "http://publications.europa.eu/resource/authority/access-right/PUBLIC",
    Tier.INTERNAL: "http://publications.europa.eu/resource/authority/access-right/RESTRICTED",
    Tier.SENSITIVE: "http://publications.europa.eu/resource/authority/access-right/RESTRICTED",
    Tier.CORE: "http://publications.europa.eu/resource/authority/access-right/NON_PUBLIC",
}


def iso_duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    if not days and not time:
        return "PT0S"
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")


def dcat_dataset(dataset: Dataset, base_url: str) -> dict[str, Any]:
    type_query = quote(dataset.entity_type, safe="")
    node: dict[str, Any] = {
        "@id": f"{base_url}/catalogue/datasets/{quote(dataset.id, safe='')}",
        "@type": "dcat:Dataset",
        "dct:identifier": dataset.id,
        "dct:title": dataset.title,
        "dct:description": dataset.description,
        "dct:publisher": {"@type": "foaf:Agent", "foaf:name": dataset.owner},
        "dct:accessRights": {"@id": ACCESS_RIGHTS[dataset.tier]},
        "cityhub:tier": dataset.tier.value,
        "cityhub:entityType": {"@id": dataset.entity_type},
        "dcat:distribution": [{
            "@type": "dcat:Distribution",
            "dcat:accessURL": {"@id": f"{base_url}/ngsi-ld/v1/entities?type={type_query}"},
            "dcat:mediaType": "application/ld+json",
            "dct:conformsTo": {"@id": "https://www.etsi.org/deliver/etsi_gs/CIM/"},
        }],
    }
    if dataset.scope:
        node["cityhub:scope"] = dataset.scope
    if dataset.update_frequency is not None:
        node["dct:accrualPeriodicity"] = {"@type": "dct:Frequency",
                                          "cityhub:every": iso_duration(dataset.update_frequency)}
    if dataset.licence:
        node["dct:license"] = {"@id": dataset.licence} if "://" in dataset.licence else {
            "@type": "dct:LicenseDocument", "dct:title": dataset.licence}
    if dataset.attributes:
        node["cityhub:attributes"] = [{"@id": a} for a in dataset.attributes]
    return node


def dcat_catalogue(datasets: list[Dataset], base_url: str, title: str = "cityhub catalogue"
                   ) -> dict[str, Any]:
    return {
        "@context": CONTEXT,
        "@id": f"{base_url}/catalogue/dcat",
        "@type": "dcat:Catalog",
        "dct:title": title,
        "dcat:dataset": [dcat_dataset(d, base_url) for d in datasets],
    }
