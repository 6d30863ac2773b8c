"""The ISO 4217 currency codes an event's ``currency`` may carry.

Hand-written from ISO 4217 list one (active codes) so that validation needs no
extra dependency and no I/O. A typo such as ``"EUE"`` is caught before it
reaches the server, where it would dead-letter the event.

Kept on purpose:

* fund codes (``BOV``, ``CHE``, ``CLF``, ``MXV``, ``USN``, ``UYI``, ...) and the
  precious-metal/supranational units, because they are in the standard;
* codes being phased out but still legal tender during a transition
  (``ANG`` next to ``XCG``, ``SLL`` next to ``SLE``, ``ZWL`` next to ``ZWG``,
  ``CUC``), so a shop that has not migrated yet is not locked out.

Left out: ``XTS`` (reserved for testing) and ``XXX`` (no currency), which no
conversion can be priced in, and withdrawn codes such as ``HRK``.

Update this list when ISO publishes an amendment that adds a currency.
"""

from __future__ import annotations

__all__ = ["CURRENCIES"]

CURRENCIES: frozenset[str] = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN
    BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD
    CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK
    DJF DKK DOP DZD
    EGP ERN ETB EUR
    FJD FKP
    GBP GEL GHS GIP GMD GNF GTQ GYD
    HKD HNL HTG HUF
    IDR ILS INR IQD IRR ISK
    JMD JOD JPY
    KES KGS KHR KMF KPW KRW KWD KYD KZT
    LAK LBP LKR LRD LSL LYD
    MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN
    NAD NGN NIO NOK NPR NZD
    OMR
    PAB PEN PGK PHP PKR PLN PYG
    QAR
    RON RSD RUB RWF
    SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL
    THB TJS TMT TND TOP TRY TTD TWD TZS
    UAH UGX USD USN UYI UYU UYW UZS
    VED VES VND VUV
    WST
    XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XUA
    YER
    ZAR ZMW ZWG ZWL
    """.split()  # noqa: SIM905
)
