"""The venue and the keepers take the markets from the ClearingHouse, not from the devnet's
constants: a deployment listing a third market with its own tick, lot, tiers and oracle works."""

import dataclasses
import json

from venue.chain import contract, deploy, read_markets
from venue.devchain import Anvil, dev_keys
from venue.domain import DEVNET_MARKETS, base, usdc
from venue.service import Venue
from venue.settings import Settings
from venue.signing import address_of

SOL = dataclasses.replace(
    DEVNET_MARKETS[0], symbol="SOL-PERP", oracle_id=7, tick_size=1_000, lot_size=1_000_000, im_bps_1=1_000,
    im_bps_2=2_000, tier_cap_1=usdc(250_000), max_position=base(50_000), open_interest_cap=base(500_000),
    maker_fee_bps=0, taker_fee_bps=4,
)


def test_venue_and_keeper_read_every_listed_market_from_the_chain(tmp_path):
    keys = dev_keys(2)
    owner, operator = (address_of(k) for k in keys)
    markets = (*DEVNET_MARKETS, SOL)
    with Anvil(accounts=2) as anvil:
        w3 = anvil.web3()
        d = deploy(w3, owner, operator=operator, markets=markets)
        ch = contract(w3, "ClearingHouse", d.clearing_house)
        assert read_markets(ch, d.markets) == markets
        assert [m.symbol for m in read_markets(ch)] == ["MARKET-0", "MARKET-1", "MARKET-2"]

        path = tmp_path / "deployment.json"
        path.write_text(json.dumps({**d.to_json(), "rpc": anvil.url, "keys": {"operator": keys[1]}}))
        venue = Venue(Settings(deployment=str(path), journal=str(tmp_path / "j.sqlite")))
        try:
            assert venue.markets == markets
            assert [m.params.symbol for m in venue.engine.markets] == ["ETH-PERP", "BTC-PERP", "SOL-PERP"]
        finally:
            venue.journal.close()

        from keeper.liquidator import Liquidator

        liquidator = Liquidator(w3, d, keys[0])
        assert liquidator.markets == markets and liquidator.scan_markets.count == 3
