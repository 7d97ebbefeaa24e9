-- The demo inventory system: MariaDB 10.11, database `inventory`, InnoDB, utf8mb4.
-- Idempotent: every statement may run again on an existing database.
-- Statements are separated by a semicolon at the end of a line (the loader splits on that).
-- `updated_at` auto-updates like a typical MySQL application, but the workload always sets it
-- explicitly (which suppresses the auto-update) so runs stay deterministic.

CREATE TABLE IF NOT EXISTS warehouses (
    warehouse_id  INT UNSIGNED   NOT NULL AUTO_INCREMENT,
    code          VARCHAR(16)    NOT NULL,
    name          VARCHAR(200)   NOT NULL,
    city          VARCHAR(100)   NOT NULL,
    country_code  CHAR(2)        NOT NULL,
    capacity_m3   DECIMAL(12,2)  NOT NULL,
    is_active     TINYINT(1)     NOT NULL DEFAULT 1,
    opened_on     DATE           NOT NULL,
    meta          JSON           NULL CHECK (meta IS NULL OR JSON_VALID(meta)),
    created_at    DATETIME(6)    NOT NULL,
    updated_at    TIMESTAMP(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
                                 ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (warehouse_id),
    UNIQUE KEY warehouses_code_uq (code)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS suppliers (
    supplier_id    INT UNSIGNED   NOT NULL AUTO_INCREMENT,
    name           VARCHAR(200)   NOT NULL,
    contact_email  VARCHAR(320)   NULL,
    phone          VARCHAR(40)    NULL,
    country_code   CHAR(2)        NOT NULL,
    status         ENUM('active', 'on_hold', 'terminated') NOT NULL DEFAULT 'active',
    credit_limit   DECIMAL(12,2)  NOT NULL DEFAULT 0.00,
    lead_time_days SMALLINT UNSIGNED NOT NULL DEFAULT 7,
    is_preferred   TINYINT(1)     NOT NULL DEFAULT 0,
    terms          JSON           NULL CHECK (terms IS NULL OR JSON_VALID(terms)),
    notes          TEXT           NULL,
    created_at     DATETIME(6)    NOT NULL,
    updated_at     TIMESTAMP(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
                                  ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (supplier_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS stock_levels (
    warehouse_id       INT UNSIGNED   NOT NULL,
    sku                VARCHAR(64)    NOT NULL,
    quantity_on_hand   INT            NOT NULL DEFAULT 0,
    quantity_reserved  INT UNSIGNED   NOT NULL DEFAULT 0,
    reorder_point      INT UNSIGNED   NOT NULL DEFAULT 10,
    unit_cost          DECIMAL(12,2)  NOT NULL,
    bin_location       VARCHAR(32)    NULL,
    last_counted_on    DATE           NULL,
    updated_at         TIMESTAMP(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
                                      ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (warehouse_id, sku),
    CONSTRAINT stock_levels_warehouse_fk FOREIGN KEY (warehouse_id)
        REFERENCES warehouses (warehouse_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS shipments (
    shipment_id      BIGINT         NOT NULL AUTO_INCREMENT,
    warehouse_id     INT UNSIGNED   NOT NULL,
    supplier_id      INT UNSIGNED   NULL,
    direction        ENUM('inbound', 'outbound', 'transfer') NOT NULL,
    status           ENUM('planned', 'in_transit', 'delivered', 'cancelled') NOT NULL
                     DEFAULT 'planned',
    sku              VARCHAR(64)    NOT NULL,
    quantity         INT UNSIGNED   NOT NULL,
    total_cost       DECIMAL(12,2)  NULL,
    carrier          VARCHAR(100)   NULL,
    tracking_number  VARCHAR(64)    NULL,
    is_fragile       TINYINT(1)     NOT NULL DEFAULT 0,
    manifest         JSON           NULL CHECK (manifest IS NULL OR JSON_VALID(manifest)),
    notes            TEXT           NULL,
    expected_on      DATE           NULL,
    shipped_at       DATETIME(6)    NULL,
    delivered_at     DATETIME(6)    NULL,
    created_at       DATETIME(6)    NOT NULL,
    updated_at       TIMESTAMP(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
                                    ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (shipment_id),
    KEY shipments_status_idx (status),
    KEY shipments_sku_idx (sku),
    CONSTRAINT shipments_warehouse_fk FOREIGN KEY (warehouse_id)
        REFERENCES warehouses (warehouse_id),
    CONSTRAINT shipments_supplier_fk FOREIGN KEY (supplier_id)
        REFERENCES suppliers (supplier_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
